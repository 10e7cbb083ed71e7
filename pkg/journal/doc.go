// Package journal is the durable, append-only record log and snapshot store of the
// matching core: every sequenced command is appended here and is acknowledged only once
// the batch holding it has been fsynced (group commit). Replaying the journal from a
// snapshot rebuilds the core's state.
//
// # Model
//
// A Journal lives in one directory and has exactly one writer goroutine (the
// sequencer), which calls Append/AppendFunc many times and then Sync once per batch: the
// batch is written with one write call per segment touched and made durable with one
// fdatasync. SyncAsync does the same in a background goroutine while the writer prepares
// the next batch; Flushed tells the writer when that is done, so it can append whatever
// arrives meanwhile and start one fsync for all of it (group commit). Each batch's
// fdatasync duration is kept in Stats.Syncs. Sequence numbers are assigned by the
// journal, strictly increasing by one.
// Any number of Readers, in the same process, read records from any sequence number and
// never see a record that is not yet durable; NextWait blocks until Sync makes more
// records durable, so a Reader follows the tail for downstream subscribers.
//
// # Files
//
// Segments are named by the sequence number of their first record, in 20 decimal
// digits: 00000000000000000001.wal. A segment is
//
//	segment header (24 bytes, little endian):
//	  0  magic   "BCXJ"
//	  4  version uint32 (1)
//	  8  first   uint64  sequence number of the first record (= the file name)
//	  16 crc     uint32  CRC32-C of bytes 0..16
//	  20 zero    uint32
//	records, back to back, each:
//	  0  crc     uint32  CRC32-C (Castagnoli) of bytes 4..28+len: header and payload
//	  4  len     uint32  payload length
//	  8  seq     uint64
//	  16 time    int64   unix nanoseconds, the sequencer's stamp
//	  24 kind    uint16
//	  26 flags   uint16  (0; reserved)
//	  28 payload [len]byte
//
// A new segment is started when the current one would grow beyond
// Options.SegmentSize (a record larger than that gets a segment of its own). The old
// segment is cut to its last record and fdatasynced before the new file is created, the
// new file's header is synced and the directory is fsynced, so on disk a segment that is
// not the last one is always complete. The last segment is kept written with zeros a
// little past its records, so that a batch's fdatasync need not change the file's size
// (see zeroAhead); Close cuts them, and recovery cuts a run of zeros to the end of the
// last segment without reporting it as torn.
//
// Snapshots live in Options.SnapshotDir (default <dir>/snapshots), named
// 00000000000000000042.snap after the sequence number of the last record they include:
//
//	0  magic      "BCXSNAP\x00"
//	8  version    uint32 (1)
//	12 flags      uint32 (0)
//	16 seq        uint64
//	24 length     uint64  payload length
//	32 payloadCRC uint32  CRC32-C of the payload
//	36 headerCRC  uint32  CRC32-C of bytes 0..36
//	40 payload
//
// # Recovery: torn tail versus corruption
//
// Open scans every segment in order, checking every record's checksum and that sequence
// numbers run on without a gap, inside and across segments. A crash can only damage what
// was being written and not yet synced, which is the end of the last segment. So:
//
//   - A bad record (short header, length running past the end of the file, checksum
//     mismatch) in the LAST segment is a torn tail if no valid record with a higher
//     sequence number starts at any byte offset after it. The tail is truncated at the
//     bad record, Recovery reports the bytes cut, and appending continues after the
//     last good record. A run of zeros that ends the last segment is cut and reported
//     apart (Recovery.ZerosCut): the journal writes zeros ahead of its records, so
//     after a crash the records usually end where such a run begins.
//   - A bad record with a valid record after it in the last segment, a bad record
//     anywhere in an earlier segment, a record with a valid checksum but the wrong
//     sequence number or unknown flags, and a gap between segments are corruption:
//     Open fails with a *CorruptionError (errors.Is(err, ErrCorrupt)) and changes
//     nothing. Only the explicit Options.RepairTail lets Open cut at the first bad
//     record of the last segment regardless; it exists for an operator who has
//     decided to lose what follows.
//   - A last segment whose header is incomplete or invalid and which holds nothing past
//     the header is a segment whose creation was torn: it is removed and recreated.
//
// The rule errs towards reporting corruption: if the page cache wrote an unsynced batch
// back out of order before a crash, a bad record can be followed by valid (but never
// acknowledged) records, and Open reports corruption rather than guess.
//
// # Snapshots and retention
//
// SaveSnapshot writes a temp file, fsyncs it, renames it into place and fsyncs the
// directory, so a crash leaves either the old set of snapshots or the new one. The
// newest Options.KeepSnapshots snapshots are kept. LoadLatestSnapshot verifies
// checksums and falls back to an older snapshot when the newest is damaged, reporting
// why. Segments are never deleted implicitly: downstream subscribers resume from old
// sequence numbers. DeleteSegmentsBefore removes whole segments, and only those covered
// by the oldest retained snapshot.
package journal
