//go:build linux

package durable

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Local file systems whose syncfs writes back every file's data and
// metadata and commits the journal (statfs f_type magic numbers).
var localFS = map[int64]string{
	0xEF53:     "ext2/3/4",
	0x58465342: "xfs",
	0x9123683E: "btrfs",
	0xF2F52010: "f2fs",
	0x2FC12FC1: "zfs",
	0x01021994: "tmpfs", // nothing to flush; syncfs is a cheap no-op
}

func supported(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("durable: %w", err)
	}
	if _, ok := localFS[int64(st.Type)]; !ok {
		return fmt.Errorf("%w: %s is on file system type %#x", ErrUnsupported, dir, st.Type)
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return fmt.Errorf("durable: %w", err)
	}
	if rel := unix.ByteSliceToString(u.Release[:]); !atLeast(rel, 5, 8) {
		return fmt.Errorf("%w: kernel %s reports no write-back errors from syncfs (5.8 or later needed)", ErrUnsupported, rel)
	}
	return nil
}

func syncfs(d *os.File) error {
	for {
		err := unix.Syncfs(int(d.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}

func device(dir string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return 0, fmt.Errorf("durable: %w", err)
	}
	return st.Dev, nil
}
