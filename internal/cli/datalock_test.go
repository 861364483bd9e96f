package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// A data directory is held by one process at a time; a second one is told
// who holds it, and the directory is free again once released.
func TestLockDataDir(t *testing.T) {
	dir := t.TempDir()
	release, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("first lock: %v", err)
	}
	// flock locks belong to an open file, so a second open in this
	// process is refused as another process would be.
	_, err = lockDataDir(dir)
	if !errors.Is(err, errDataInUse) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second lock error = %v; want %v naming pid %d", err, errDataInUse, os.Getpid())
	}
	release()
	again, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()
}
