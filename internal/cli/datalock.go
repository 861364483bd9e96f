package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockName is the lock file of a data directory whose queue is embedded.
const lockName = "glimpse.lock"

// errDataInUse is the error of a data directory another process holds.
var errDataInUse = errors.New("data directory in use")

// lockDataDir takes the data directory dir for this process: an embedded
// JetStream server owns its files, and a second one started on them would
// corrupt the streams' indexes and strand jobs. The lock is an flock(2) on
// dir/glimpse.lock, so it ends with the process however the process ends;
// the file records the holder's pid for the message a second process gets.
// release gives the lock up.
func lockDataDir(dir string) (release func(), err error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := "another process"
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				holder = fmt.Sprintf("another glimpse (pid %d)", pid)
			}
		}
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is used by %s; stop it, or give this one another --data", errDataInUse, dir, holder)
		}
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}
