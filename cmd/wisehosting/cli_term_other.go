//go:build !linux

package main

import "os"

// isTerminal reports whether f is a character device (a terminal, most
// likely).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// hideInput does nothing on this platform: a token typed at the prompt is
// echoed (pipe it in, or set $WISEHOSTING_TOKEN, to keep it off screen).
func hideInput(*os.File) (restore func()) { return func() {} }
