// Package matching is the matching service: it puts the orders of every
// member in one sequence, makes each command durable before answering it,
// checks pre-trade risk, matches, and tells everyone what happened, in
// order.
//
// # Architecture
//
// One goroutine, the sequencer, owns the deterministic state machine
// (package core). gRPC handlers convert requests to core commands and send
// them over a bounded queue; a full queue is back-pressure (the handler
// waits up to Config.EnqueueTimeout, then answers RESOURCE_EXHAUSTED). The
// sequencer drains up to Config.BatchMax commands at a time, stamps each
// with the next sequence number and the batch's time (read once as the
// batch starts: the commands of a batch are applied within a millisecond or
// so) and applies it. A writer goroutine then appends one journal record
// per state-changing command holding the command and the events it
// produced, while the sequencer applies the next batch. Refused, duplicate
// and no-op commands change nothing and are not journaled (replay is
// identical either way). Batches are made durable by group commit: while
// one fsync runs, the writer appends the batches that arrive, and they
// share the next fsync. Only then are a batch's commands answered and its
// market data published. Reads (own orders,
// executions, balances) are queries that run on the sequencer between
// commands and are answered with the batch they ran in, so they never show
// state that is not durable.
//
// # Recovery
//
// New loads the newest valid snapshot and replays the journal records after
// it, re-applying each command and checking that it produces exactly the
// events recorded (a determinism check on every start). Every
// Config.SnapshotEvery records the sequencer hands a snapshot to the
// snapshotter, which writes it once its sequence number is durable. On a
// machine with cores to spare (Config.Snapshots) the sequencer hands only
// the sequence number: the snapshotter keeps a replica of the core, brings
// it to that number by the same replay and check, and writes the replica's
// canonical encoding, so the sequencer never waits for a scheduled
// snapshot. Otherwise, and for an operator's snapshot
// (CoreService.TakeSnapshot), the sequencer encodes the core itself.
//
// # Reference data and phases
//
// The service loads instruments from the listing service and submits them
// as journaled DefineInstrument commands (so replay never depends on the
// listing service), re-checking every Config.InstrumentRefresh. A
// scheduler turns each instrument's session schedule into journaled
// SetPhase commands at the boundaries: pre-open for a call auction phase,
// continuous, closed for breaks, and closed with the end of the trading day
// (day orders expire, the day's client order ids are forgotten) after the
// last phase. An operator's halt (CoreService.SetInstrumentPhase) is not
// ended by the schedule, only by an operator or the close.
//
// # Event log and market data
//
// StreamExecutions and SubscribeEvents read the journal: they start at any
// retained sequence number, see durable records only, and follow the tail.
// Market data goes through an mdfeed.Feed: in-process, or Redis for several
// gateway processes.
package matching

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/bcx-exchange/bcx/pkg/journal"
	"github.com/bcx-exchange/bcx/pkg/latency"
	"github.com/bcx-exchange/bcx/pkg/money"
	listingv1 "github.com/bcx-exchange/bcx/proto/bcx/listing/v1"
	marketdatav1 "github.com/bcx-exchange/bcx/proto/bcx/marketdata/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	"github.com/bcx-exchange/bcx/services/matching/core"
	"github.com/bcx-exchange/bcx/services/matching/mdfeed"
)

// Config configures the matching service. Zero values take the defaults.
type Config struct {
	// DataDir holds the journal (DataDir/journal) and its snapshots.
	DataDir string
	// Listing is the listing service. Its calls must carry credentials of an
	// OPERATOR or SERVICE principal: the service lists instruments and maps
	// participant ids to numbers with GetParticipant. Nil disables the
	// instrument sync (tests and benchmarks define instruments directly).
	Listing listingv1.ListingServiceClient
	// ResolveParticipant maps a participant id to its number; by default it
	// asks Listing (cached).
	ResolveParticipant func(ctx context.Context, id string) (int64, error)
	Logger             *slog.Logger
	// Clock stamps commands and drives the schedule. Default time.Now.
	Clock func() time.Time
	// Feed carries market data; default an in-process mdfeed.Local.
	Feed mdfeed.Feed
	// Currencies known for funding; default money.NewRegistry().
	Currencies *money.Registry
	Limits     core.Limits

	QueueSize      int           // bounded command queue; default 65,536
	BatchMax       int           // commands per batch; default 8,192
	EnqueueTimeout time.Duration // wait for queue room; default 1 s
	SnapshotEvery  uint64        // journal records between snapshots; default 1,000,000
	// Snapshots says where scheduled snapshots are encoded; default
	// SnapshotsAuto.
	Snapshots SnapshotMode
	// HistoryPerMember bounds the executions ListExecutions keeps for one
	// member in one instrument in a day: the oldest go 4,096 at a time past
	// it; default 1,048,576.
	HistoryPerMember int
	// InstrumentRefresh is how often instruments are re-read from Listing;
	// default 30 s.
	InstrumentRefresh time.Duration
	// ScheduleTick is how often the schedule is evaluated; default 1 s;
	// negative disables the scheduler (phases then change only by
	// CoreService.SetInstrumentPhase).
	ScheduleTick time.Duration
	// MarketDepth is the number of levels a side published; default 100.
	MarketDepth int
	// SegmentSize of journal segments; default the journal's (64 MiB).
	SegmentSize int64
	// NoSync skips fsync: for tests and benchmarks that say so only.
	NoSync bool
}

// SnapshotMode is where scheduled snapshots are encoded.
type SnapshotMode int

const (
	// SnapshotsAuto is SnapshotsFromReplica with four or more CPUs to run
	// on (GOMAXPROCS, which follows a container's CPU quota),
	// SnapshotsOnSequencer with fewer.
	SnapshotsAuto SnapshotMode = iota
	// SnapshotsOnSequencer stops the sequencer to encode the core's small
	// parts, walk its books and freeze its orders (copy on write), and the
	// snapshotter encodes the rest: every order waits for the first part,
	// 10-17 ms for a core of 400k resting orders and 2M client order ids
	// (the whole encoding takes 200-250 ms); while the rest is encoded, the
	// sequencer copies each order page it first touches.
	SnapshotsOnSequencer
	// SnapshotsFromReplica has the snapshotter encode a replica of the core
	// that it brings forward from the journal: the sequencer never waits,
	// but the replica applies every command a second time, about half a
	// core at 1M commands/s. On two cores that cost the sequencer a fifth
	// of its throughput (bench matching, median of 8 pairs).
	SnapshotsFromReplica
)

// ParseSnapshotMode reads "auto", "sequencer" or "replica".
func ParseSnapshotMode(s string) (SnapshotMode, error) {
	switch s {
	case "auto", "":
		return SnapshotsAuto, nil
	case "sequencer":
		return SnapshotsOnSequencer, nil
	case "replica":
		return SnapshotsFromReplica, nil
	}
	return 0, fmt.Errorf("snapshots %q: want auto, sequencer or replica", s)
}

func (c *Config) withDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Feed == nil {
		c.Feed = mdfeed.NewLocal()
	}
	if c.Currencies == nil {
		c.Currencies = money.NewRegistry()
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 65536
	}
	if c.BatchMax <= 0 {
		c.BatchMax = 8192
	}
	if c.EnqueueTimeout <= 0 {
		c.EnqueueTimeout = time.Second
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = 1_000_000
	}
	if c.Snapshots == SnapshotsAuto {
		c.Snapshots = SnapshotsOnSequencer
		if runtime.GOMAXPROCS(0) >= 4 {
			c.Snapshots = SnapshotsFromReplica
		}
	}
	if c.InstrumentRefresh <= 0 {
		c.InstrumentRefresh = 30 * time.Second
	}
	if c.ScheduleTick == 0 {
		c.ScheduleTick = time.Second
	}
	if c.MarketDepth <= 0 {
		c.MarketDepth = 100
	}
}

// Service is the matching service.
type Service struct {
	cfg  Config
	log  *slog.Logger
	j    *journal.Journal
	core *core.Core // owned by the sequencer once Run starts
	seq  *sequencer

	in      chan *request
	reg     atomic.Pointer[registry]
	mdCh    chan *mdBatch
	mdFree  freeList[*mdBatch] // published batches, for the sequencer to reuse
	stopped chan struct{}      // closed when the sequencer has stopped
	fatal   atomic.Pointer[error]
	// answerLatency is each command's time from enqueue to its durable
	// answer: the server's share of an order's latency, without the
	// transport's or the client's.
	answerLatency latency.Recorder
	// snapStalls is each snapshot encoded on the sequencer (scheduled with
	// SnapshotsOnSequencer, or an operator's): how long it stopped.
	snapStalls latency.Recorder

	// snapCh hands the snapshotter a scheduled snapshot (capacity 1): its
	// sequence number, and its encoding if made on the sequencer; snapBusy
	// is set from then until it is done with it; snapWritten is the last
	// one it wrote (for tests and benches).
	snapCh      chan snapJob
	snapBufs    freeList[[2][]byte] // a written snapshot's buffers, for the next
	snapExit    chan struct{}       // closed when the snapshotter has stopped
	snapBusy    atomic.Bool
	snapWritten atomic.Uint64

	partsMu sync.Mutex
	parts   map[string]int64 // participant id -> number

	schedMu     sync.Mutex
	schedules   map[int64]*instSchedule
	commodityOf map[string]string // symbol -> commodity code

	hist      *execHistory
	histStop  func() // stops loading the history; returns once it has stopped
	histClose func() // stops the history's goroutine

	recovery Recovery
	running  atomic.Bool
	closed   atomic.Bool
	ready    chan struct{}
	readyOne sync.Once
	// synced is set after the first instrument sync; schedKick asks the
	// scheduler for a pass now. Ready waits for the scheduler's first pass
	// over the synced instruments, so that an operator's phase change made
	// after Ready is never overwritten by the schedule's start-up state.
	synced    atomic.Bool
	schedKick chan struct{}
}

// Recovery reports what New found.
type Recovery struct {
	SnapshotSeq    uint64 // 0: none
	Replayed       uint64 // records replayed after the snapshot
	LastSeq        uint64
	SkippedSnaps   int
	TruncatedBytes int64 // torn journal tail cut
	ZerosCut       int64 // zeros cut from the journal's end (see journal.Recovery)
	// Where the time went.
	OpenJournal, LoadSnapshot, Replay time.Duration
}

// New opens the journal under cfg.DataDir and recovers the core: the newest
// valid snapshot plus the records after it. It fails if a replayed record
// does not reproduce its recorded events.
func New(cfg Config) (*Service, error) {
	cfg.withDefaults()
	if cfg.DataDir == "" {
		return nil, errors.New("matching: Config.DataDir is required")
	}
	t0 := time.Now()
	j, err := journal.Open(filepath.Join(cfg.DataDir, "journal"), journal.Options{NoSync: cfg.NoSync, SegmentSize: cfg.SegmentSize})
	if err != nil {
		return nil, fmt.Errorf("matching: open journal: %w", err)
	}
	opened := time.Since(t0)
	c, rec, err := recoverCore(j, cfg.Limits)
	if err != nil {
		j.Close()
		return nil, err
	}
	rec.OpenJournal = opened
	rec.TruncatedBytes = j.Recovery().TruncatedBytes
	rec.ZerosCut = j.Recovery().ZerosCut
	s := &Service{
		cfg:       cfg,
		log:       cfg.Logger,
		j:         j,
		core:      c,
		in:        make(chan *request, cfg.QueueSize),
		mdCh:      make(chan *mdBatch, 1024),
		mdFree:    newFreeList[*mdBatch](4),
		snapCh:    make(chan snapJob, 1),
		snapBufs:  newFreeList[[2][]byte](1),
		snapExit:  make(chan struct{}),
		stopped:   make(chan struct{}),
		parts:     map[string]int64{},
		schedules: map[int64]*instSchedule{}, commodityOf: map[string]string{},
		recovery:  rec,
		ready:     make(chan struct{}),
		schedKick: make(chan struct{}, 1),
	}
	s.seq = newSequencer(s)
	s.seq.publishRegistry(true)
	// The execution history indexes the journal recovered so far in the
	// background; the sequencer feeds it from here on.
	s.hist = newExecHistory(cfg.HistoryPerMember)
	histCtx, histStop := context.WithCancel(context.Background())
	histDone := make(chan struct{})
	s.histStop = func() { histStop(); <-histDone }
	dayStart := c.DayStart()
	go func() { defer close(histDone); s.hist.load(histCtx, s, dayStart, rec.LastSeq) }()
	histRun := make(chan struct{})
	s.histClose = func() { close(s.hist.stop); <-histRun }
	go func() { defer close(histRun); s.hist.run(s.registry) }()
	cfg.Logger.Info("matching recovered", "snapshot_seq", rec.SnapshotSeq, "replayed", rec.Replayed,
		"last_seq", rec.LastSeq, "took", rec.OpenJournal+rec.LoadSnapshot+rec.Replay)
	return s, nil
}

// Recovery reports what New found and replayed.
func (s *Service) Recovery() Recovery { return s.recovery }

func recoverCore(j *journal.Journal, lim core.Limits) (*core.Core, Recovery, error) {
	var rec Recovery
	t0 := time.Now()
	c, snapSeq, skipped, err := loadSnapshot(j, lim)
	rec.SkippedSnaps = skipped
	if err != nil {
		return nil, rec, err
	}
	rec.SnapshotSeq = snapSeq
	rec.LoadSnapshot = time.Since(t0)
	t0 = time.Now()
	if rec.Replayed, err = replay(context.Background(), c, j, 0); err != nil {
		return nil, rec, err
	}
	if d := j.DurableSeq(); c.LastSeq() != d && !(c.LastSeq() == 0 && d == 0) {
		return nil, rec, fmt.Errorf("matching: core at %d after replay, journal at %d", c.LastSeq(), d)
	}
	rec.LastSeq = c.LastSeq()
	rec.Replay = time.Since(t0)
	return c, rec, nil
}

// loadSnapshot returns a core restored from the journal's newest valid
// snapshot (an empty core if there is none), the snapshot's sequence number
// (0: none) and how many newer snapshots did not verify.
func loadSnapshot(j *journal.Journal, lim core.Limits) (*core.Core, uint64, int, error) {
	snap, skipped, err := j.LoadLatestSnapshot()
	switch {
	case errors.Is(err, journal.ErrNoSnapshot):
		return core.New(lim), 0, len(skipped), nil
	case err != nil:
		return nil, 0, len(skipped), fmt.Errorf("matching: load snapshot: %w", err)
	}
	b := make([]byte, snap.Size)
	_, err = io.ReadFull(snap, b)
	snap.Close()
	if err != nil {
		return nil, 0, len(skipped), fmt.Errorf("matching: read snapshot %d: %w", snap.Seq, err)
	}
	c, err := core.Load(b, lim)
	if err != nil {
		return nil, 0, len(skipped), fmt.Errorf("matching: snapshot %d: %w", snap.Seq, err)
	}
	if c.LastSeq() != snap.Seq {
		return nil, 0, len(skipped), fmt.Errorf("matching: snapshot %d holds state as of %d", snap.Seq, c.LastSeq())
	}
	return c, snap.Seq, len(skipped), nil
}

// replay re-applies to c the journal records after c.LastSeq(), up to and
// including upto (0: every durable record), checking that each command
// reproduces exactly the events recorded with it. It returns how many
// records it applied. On an error c is left part way and must be dropped.
// Recovery replays the live core with it, the snapshotter its replica.
func replay(ctx context.Context, c *core.Core, j *journal.Journal, upto uint64) (uint64, error) {
	if upto != 0 && c.LastSeq() >= upto {
		return 0, nil
	}
	r, err := j.NewReader(c.LastSeq() + 1)
	if err != nil {
		return 0, fmt.Errorf("matching: replay: %w", err)
	}
	defer r.Close()
	var cmd core.Command
	var res core.Result
	var buf []byte
	var n uint64
	for upto == 0 || c.LastSeq() < upto {
		// A long replay (a replica rebuilt from an old snapshot) must not
		// hold up a shutdown.
		if n%4096 == 0 && ctx.Err() != nil {
			return n, ctx.Err()
		}
		record, err := r.Next()
		if errors.Is(err, journal.ErrNoRecord) {
			if upto == 0 {
				break
			}
			// The caller waited for upto to be durable: nothing can be missing.
			return n, fmt.Errorf("matching: replay: record %d is not durable (replaying to %d)", r.NextSeq(), upto)
		}
		if err != nil {
			return n, fmt.Errorf("matching: replay: %w", err)
		}
		recorded, err := core.DecodeCommand(record.Payload, &cmd)
		if err != nil {
			return n, fmt.Errorf("matching: replay seq %d: %w", record.Seq, err)
		}
		c.Apply(record.Seq, record.Time, &cmd, &res)
		buf = core.AppendEvents(buf[:0], c.Events())
		if !res.Changed || string(buf) != string(recorded) {
			return n, fmt.Errorf("matching: replay of seq %d did not reproduce the recorded events (determinism broken)", record.Seq)
		}
		n++
	}
	return n, nil
}

// Register adds the TradingService, CoreService and MarketDataService to a
// gRPC server (which must use a policy that includes Policy()).
func (s *Service) Register(g grpc.ServiceRegistrar) {
	tradingv1.RegisterTradingServiceServer(g, &tradingServer{s: s})
	tradingv1.RegisterCoreServiceServer(g, &coreServer{s: s})
	marketdatav1.RegisterMarketDataServiceServer(g, NewMarketDataServer(s.cfg.Feed))
}

// Run runs the sequencer, the market data publisher, the snapshot writer,
// the instrument sync and the scheduler until ctx is done or the journal
// fails. Run once.
func (s *Service) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("matching: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	seqErr := make(chan error, 1)
	wg.Add(3)
	go func() { defer wg.Done(); seqErr <- s.seq.run(ctx) }()
	go func() { defer wg.Done(); s.publishLoop(ctx) }()
	go func() { defer wg.Done(); s.snapshotLoop(ctx) }()
	if s.cfg.Listing != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.instrumentLoop(ctx) }()
	} else {
		s.markReady()
	}
	if s.cfg.ScheduleTick > 0 {
		wg.Add(2)
		go func() { defer wg.Done(); s.scheduleLoop(ctx) }()
		go func() { defer wg.Done(); s.listingExpiryLoop(ctx) }()
	}
	var err error
	select {
	case err = <-seqErr:
		cancel()
	case <-ctx.Done():
		err = <-seqErr
	}
	wg.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// Ready is closed once the first instrument sync has completed (at once
// without a listing service). It stays open while the listing service is
// unreachable; the sync keeps retrying every Config.InstrumentRefresh.
func (s *Service) Ready() <-chan struct{} { return s.ready }

func (s *Service) markReady() { s.readyOne.Do(func() { close(s.ready) }) }

// Close stops loading the execution history and closes the journal and the
// market data feed. Call it after Run has returned.
func (s *Service) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	if !s.running.Load() {
		close(s.stopped)
	}
	s.cfg.Feed.Close()
	s.histStop()
	s.histClose()
	return s.j.Close()
}

// Journal is the service's journal, for tools and tests that read it.
func (s *Service) Journal() *journal.Journal { return s.j }

// AnswerLatency is the distribution of commands' time from being handed to
// the sequencer to their durable answer, since the service started.
func (s *Service) AnswerLatency() latency.Histogram { return s.answerLatency.Snapshot() }

// SnapshotStalls is the distribution of the times the sequencer stopped to
// encode a snapshot, since the service started.
func (s *Service) SnapshotStalls() latency.Histogram { return s.snapStalls.Snapshot() }
