package blobstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// fileBlobs is the data path of file:// stores: one file per blob at
// <dir>/<key>, laid out as gocloud.dev's fileblob lays it out, so a
// directory written by either is read by both.
//
// It exists because fileblob's writer costs a durable store more than the
// bytes: it creates a temp file, hashes the bytes with MD5, then creates a
// second file (the <key>.attrs sidecar holding the content type and
// metadata) and renames. On the machines we measured, creating a file costs
// far more CPU than writing a few hundred kilobytes, and Glimpse writes two
// or three blobs per image. fileBlobs creates one file per blob and keeps
// the content type and SHA-256 in extended attributes of that file
// (user.glimpse.*), set on the open temp file before its rename, so the
// blob and its attributes appear together. Where the file system refuses
// user extended attributes it falls back to fileblob's sidecar.
//
// A Put is durable when it returns: the temp file is fsynced, renamed over
// the key, and the directory fsynced (through a directory handle kept open,
// so that the fsync costs no open). With a syncer, the file is renamed
// unsynced and one group-committed syncfs, shared with concurrent Puts and
// the other engines on the disk, makes both the bytes and the rename
// durable.
type fileBlobs struct {
	dir    string
	syncer syncer // nil: fsync each file and directory

	// xattrs is 1 while extended attributes work, 0 once the file system
	// refused them (then .attrs sidecars are written).
	xattrs atomic.Int32

	mu   sync.Mutex
	dirs map[string]*os.File // open directories, for fsync; bounded by maxDirHandles
}

// maxDirHandles bounds the directory handles fileBlobs keeps open. Keys
// fan out by tenant, so the set of directories is small but not fixed.
const maxDirHandles = 256

const (
	xattrContentType = "user.glimpse.content_type"
	xattrSHA256      = "user.glimpse.sha256"
	sidecarExt       = ".attrs" // fileblob's attribute sidecar
)

// syncer makes everything written to a file system before a call durable
// (*durable.Syncer).
type syncer interface {
	Sync(ctx context.Context) error
}

func newFileBlobs(dir string) *fileBlobs {
	f := &fileBlobs{dir: dir, dirs: map[string]*os.File{}}
	f.xattrs.Store(1)
	return f
}

// path maps a key that passed CheckKey to its file.
func (f *fileBlobs) path(key string) (string, error) {
	if strings.HasSuffix(key, sidecarExt) {
		return "", fmt.Errorf("%w %q: the %s suffix is reserved in file stores", ErrBadKey, key, sidecarExt)
	}
	for _, c := range key {
		if c < 0x20 {
			return "", fmt.Errorf("%w %q: control character", ErrBadKey, key)
		}
	}
	return filepath.Join(f.dir, filepath.FromSlash(key)), nil
}

func (f *fileBlobs) put(ctx context.Context, key string, b []byte, contentType, digest string) (err error) {
	path, err := f.path(key)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	d, err := f.dirHandle(dir)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if errors.Is(err, os.ErrNotExist) {
		// The directory went away under its cached handle (removed by
		// hand): forget the handle, make the directory again, retry once.
		f.forgetDir(dir)
		if d, err = f.dirHandle(dir); err != nil {
			return err
		}
		tmp, err = os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	}
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(b); err != nil {
		return err
	}
	sidecar := false
	if f.xattrs.Load() == 1 {
		err := unix.Fsetxattr(int(tmp.Fd()), xattrContentType, []byte(contentType), 0)
		if err == nil {
			err = unix.Fsetxattr(int(tmp.Fd()), xattrSHA256, []byte(digest), 0)
		}
		switch {
		case errors.Is(err, unix.ENOTSUP), errors.Is(err, unix.EPERM):
			f.xattrs.Store(0)
			sidecar = true
		case err != nil:
			return fmt.Errorf("set attributes: %w", err)
		}
	} else {
		sidecar = true
	}
	if f.syncer == nil {
		if err := tmp.Sync(); err != nil {
			return err
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if sidecar {
		if err := writeSidecar(path, contentType, digest); err != nil {
			return err
		}
	} else if err := os.Remove(path + sidecarExt); err != nil && !errors.Is(err, os.ErrNotExist) {
		// A sidecar left by fileblob for an earlier blob under this key
		// would describe the old bytes; Stat reads xattrs first anyway.
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if f.syncer != nil {
		return f.syncer.Sync(ctx)
	}
	// Make the rename itself durable.
	return d.Sync()
}

// writeSidecar writes fileblob's .attrs file for the blob at path,
// atomically.
func writeSidecar(path, contentType, digest string) error {
	b, err := json.Marshal(sidecarAttrs{ContentType: contentType, Metadata: map[string]string{MetadataSHA256: digest}})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".attrs.*.tmp")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path+sidecarExt)
}

// sidecarAttrs is the part of fileblob's .attrs JSON that Glimpse reads.
type sidecarAttrs struct {
	ContentType string            `json:"user.content_type"`
	Metadata    map[string]string `json:"user.metadata"`
}

// dirHandle returns an open handle on dir, creating the directory first
// when it is missing.
func (f *fileBlobs) dirHandle(dir string) (*os.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d, ok := f.dirs[dir]; ok {
		return d, nil
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if len(f.dirs) >= maxDirHandles {
		for k, old := range f.dirs {
			// Another Put may still fsync old: closing it under the
			// caller would fail that fsync, so only forget it; the
			// finalizer of *os.File closes it.
			_ = old
			delete(f.dirs, k)
			break
		}
	}
	f.dirs[dir] = d
	return d, nil
}

// forgetDir drops the cached handle of dir.
func (f *fileBlobs) forgetDir(dir string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d, ok := f.dirs[dir]; ok {
		d.Close()
		delete(f.dirs, dir)
	}
}

func (f *fileBlobs) get(key string) ([]byte, error) {
	path, err := f.path(key)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, f.wrap(key, err)
	}
	return b, nil
}

func (f *fileBlobs) open(key string) (io.ReadCloser, Attrs, error) {
	path, err := f.path(key)
	if err != nil {
		return nil, Attrs{}, err
	}
	r, err := os.Open(path)
	if err != nil {
		return nil, Attrs{}, f.wrap(key, err)
	}
	a, err := f.attrs(r, path)
	if err != nil {
		r.Close()
		return nil, Attrs{}, f.wrap(key, err)
	}
	return r, a, nil
}

func (f *fileBlobs) stat(key string) (Attrs, error) {
	path, err := f.path(key)
	if err != nil {
		return Attrs{}, err
	}
	r, err := os.Open(path)
	if err != nil {
		return Attrs{}, f.wrap(key, err)
	}
	defer r.Close()
	a, err := f.attrs(r, path)
	if err != nil {
		return Attrs{}, f.wrap(key, err)
	}
	return a, nil
}

// attrs describes the open blob r at path: size and time from the file,
// content type and digest from its extended attributes or, failing those,
// its sidecar.
func (f *fileBlobs) attrs(r *os.File, path string) (Attrs, error) {
	fi, err := r.Stat()
	if err != nil {
		return Attrs{}, err
	}
	if fi.IsDir() {
		return Attrs{}, os.ErrNotExist
	}
	a := Attrs{Size: fi.Size(), ModTime: fi.ModTime()}
	if ct, ok := getxattr(r, xattrContentType); ok {
		a.ContentType = ct
		if ct == "" {
			a.ContentType = "application/octet-stream"
		}
		a.SHA256, _ = getxattr(r, xattrSHA256)
		return a, nil
	}
	b, err := os.ReadFile(path + sidecarExt)
	switch {
	case err == nil:
		var sc sidecarAttrs
		if err := json.Unmarshal(b, &sc); err != nil {
			return Attrs{}, fmt.Errorf("attributes of %s: %w", filepath.Base(path), err)
		}
		a.ContentType, a.SHA256 = sc.ContentType, sc.Metadata[MetadataSHA256]
	case errors.Is(err, os.ErrNotExist):
	default:
		return Attrs{}, err
	}
	if a.ContentType == "" {
		a.ContentType = "application/octet-stream"
	}
	return a, nil
}

// getxattr reads extended attribute name of r.
func getxattr(r *os.File, name string) (string, bool) {
	buf := make([]byte, 1024)
	n, err := unix.Fgetxattr(int(r.Fd()), name, buf)
	if err != nil {
		return "", false
	}
	return string(buf[:n]), true
}

func (f *fileBlobs) exists(key string) (bool, error) {
	path, err := f.path(key)
	if err != nil {
		return false, err
	}
	fi, err := os.Stat(path)
	switch {
	case err == nil:
		return !fi.IsDir(), nil
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return false, nil
	}
	return false, err
}

func (f *fileBlobs) delete(key string) error {
	path, err := f.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		return err
	}
	if err := os.Remove(path + sidecarExt); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		return err
	}
	return nil
}

// list walks the directory that holds the keys starting with prefix and
// calls fn with each blob's key; temp files and sidecars are not blobs.
func (f *fileBlobs) list(ctx context.Context, prefix string, fn func(key string) error) error {
	root := f.dir
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		root = filepath.Join(f.dir, filepath.FromSlash(prefix[:i]))
	}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() || strings.HasPrefix(name, ".") || strings.HasSuffix(name, sidecarExt) {
			return nil
		}
		rel, err := filepath.Rel(f.dir, path)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		return fn(key)
	})
	if err != nil {
		return fmt.Errorf("blobstore: list %s: %w", prefix, err)
	}
	return nil
}

func (f *fileBlobs) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, d := range f.dirs {
		d.Close()
		delete(f.dirs, k)
	}
}

// wrap maps a missing file (or a path through a file) to ErrNotFound.
func (f *fileBlobs) wrap(key string, err error) error {
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) {
		return fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	return err
}
