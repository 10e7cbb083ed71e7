//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package journal

import "os"

// lockFile is a no-op where flock is unavailable: single-process use is then the
// caller's responsibility.
func lockFile(*os.File) error { return nil }
