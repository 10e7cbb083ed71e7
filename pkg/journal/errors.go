package journal

import (
	"errors"
	"fmt"
)

var (
	// ErrCorrupt is matched (errors.Is) by every *CorruptionError.
	ErrCorrupt = errors.New("journal: corrupt")
	// ErrClosed is returned by operations on a closed Journal or Reader.
	ErrClosed = errors.New("journal: closed")
	// ErrLocked is returned by Open when another process holds the journal directory.
	ErrLocked = errors.New("journal: directory locked by another process")
	// ErrCompacted is returned when a reader asks for records whose segments were deleted.
	ErrCompacted = errors.New("journal: records before the first retained segment were deleted")
	// ErrNoRecord is returned by Reader.Next when every durable record has been read.
	ErrNoRecord = errors.New("journal: no more durable records")
	// ErrTooLarge is returned by Append when a payload exceeds Options.MaxPayload.
	ErrTooLarge = errors.New("journal: payload too large")
	// ErrNotDurable is returned by SaveSnapshot for a sequence number not yet durable.
	ErrNotDurable = errors.New("journal: snapshot sequence number is not durable yet")
	// ErrNoSnapshot is returned by LoadLatestSnapshot when no valid snapshot exists.
	ErrNoSnapshot = errors.New("journal: no valid snapshot")
)

// CorruptionError describes damage that is not a torn tail. It is never repaired
// silently.
type CorruptionError struct {
	Path   string // file
	Offset int64  // byte offset of the bad record or header, -1 if not applicable
	Seq    uint64 // sequence number expected at Offset, 0 if unknown
	Reason string
}

func (e *CorruptionError) Error() string {
	if e.Offset < 0 {
		return fmt.Sprintf("journal: corrupt: %s: %s", e.Path, e.Reason)
	}
	return fmt.Sprintf("journal: corrupt: %s at offset %d (expecting seq %d): %s", e.Path, e.Offset, e.Seq, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptionError) Is(target error) bool { return target == ErrCorrupt }
