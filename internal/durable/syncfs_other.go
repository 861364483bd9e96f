//go:build !linux

package durable

import "os"

func supported(string) error { return ErrUnsupported }

func syncfs(*os.File) error { return ErrUnsupported }

func device(string) (uint64, error) { return 0, ErrUnsupported }
