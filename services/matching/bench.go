package matching

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/bcx-exchange/bcx/pkg/journal"
	"github.com/bcx-exchange/bcx/pkg/latency"
	"github.com/bcx-exchange/bcx/pkg/orderbook"
	"github.com/bcx-exchange/bcx/pkg/orderbook/obbench"
	"github.com/bcx-exchange/bcx/services/matching/core"
)

// The benchmarks behind `bcx bench matching|grpc|recovery`. Each prints
// one JSON line.

// benchCmd is one pre-generated command of the standard order book
// workload, with the core's order id already resolved.
type benchCmd struct {
	op      obbench.Op
	side    orderbook.Side
	part    int64
	price   int64
	qty     int64
	orderID int64 // the core id of the order placed, cancelled or replaced
}

// benchParticipants is how many members the workload's orders come from
// (obbench draws 1..1000).
const benchParticipants = 1000

// benchDef is an instrument spanning the workload's price band.
func benchDef() core.InstrumentDef {
	return core.InstrumentDef{Number: 1, Symbol: "BENCH", Version: 1, Currency: "CNY", CurrencyExp: 2, LotMicro: 1_000_000,
		TickMinor: 1, TickLotMinor: 1, ReferenceTicks: 1 << 16, BandTicks: 1<<16 - 1, CallAuction: true, Continuous: true}
}

// benchSetup defines the bench instrument with fees, opens it, and gives
// every participant funds and a receipt pool, through the service's own
// sequencer (no Run needed: the caller owns the sequencer).
func benchSetup(s *Service) error {
	cmds := benchSetupCommands()
	for i := range cmds {
		r := &request{cmd: cmds[i], notify: func(*request) {}}
		ts := time.Now().UnixNano()
		var ev core.Events
		s.seq.apply(r, &ev, nil, ts)
		if r.res.Status != core.StatusOK {
			return fmt.Errorf("bench setup command %d refused: %+v", i, r.res)
		}
		if err := s.seq.appendRecord(r, ts, &ev); err != nil {
			return err
		}
	}
	s.seq.publishRegistry(false)
	return s.j.Sync()
}

// benchSetupCommands define the bench instrument with fees, open it, and
// give every participant funds and a receipt pool.
func benchSetupCommands() []core.Command {
	cmds := []core.Command{
		{Kind: core.CmdDefineInstrument, Def: benchDef()},
		{Kind: core.CmdSetPhase, Instrument: 1, Phase: core.PhaseContinuous, PhaseSource: core.SourceOperator},
		{Kind: core.CmdSetFeeSchedule, Instrument: 1, Key: "fees", Fees: core.FeeSchedule{
			Buyer:  core.FeeRule{Basis: core.FeeRate, RateE12: 200_000_000, MinMinor: 1},
			Seller: core.FeeRule{Basis: core.FeePerLot, PerLotMinor: 1}}},
	}
	for p := int64(1); p <= benchParticipants; p++ {
		id := "M-" + strconv.FormatInt(p, 10)
		cmds = append(cmds,
			core.Command{Kind: core.CmdCreditFunds, Participant: p, ParticipantID: id, Key: "fund/" + id, Currency: "CNY", CurrencyExp: 2, Amount: 1 << 50},
			core.Command{Kind: core.CmdCreditPosition, Participant: p, ParticipantID: id, Key: "rc/" + id, Receipt: "WR-" + id,
				Symbols: []int64{1}, WeightMicro: 1 << 50})
	}
	return cmds
}

// benchWorkload generates n commands (after the prefill) of the standard
// mix, resolving the workload's order ids to the ids the core will give
// (every place is accepted: the funds and pools are ample, which the run
// checks).
func benchWorkload(seed uint64, n int64, firstOrderID int64) (prefill, cmds []benchCmd, err error) {
	w, err := obbench.NewWorkload("standard", seed)
	if err != nil {
		return nil, nil, err
	}
	const handleMask = 1<<17 - 1
	g := &chunkedWorkload{w: w, coreID: make([]int64, handleMask+1), owner: make([]int64, handleMask+1), next: firstOrderID}
	for _, c := range w.Prefill() {
		prefill = append(prefill, g.convert(&c))
	}
	cmds = make([]benchCmd, 0, n)
	chunk := make([]obbench.Cmd, obbench.ChunkSize)
	for int64(len(cmds)) < n {
		next := w.Next(chunk[:min(int64(len(chunk)), n-int64(len(cmds)))])
		for i := range next {
			cmds = append(cmds, g.convert(&next[i]))
		}
	}
	return prefill, cmds, nil
}

// fill sets cmd to the command b stands for.
func (b *benchCmd) fill(cmd *core.Command) {
	switch b.op {
	case obbench.OpNew, obbench.OpIOC:
		tif := orderbook.GTC
		if b.op == obbench.OpIOC {
			tif = orderbook.IOC
		}
		// The client order id is made here, not stored in the command list:
		// a real request's id is allocated when it is decoded, too.
		*cmd = core.Command{Kind: core.CmdPlace, Participant: b.part, Instrument: 1, ClientOrderID: "o" + strconv.FormatInt(b.orderID, 36), Side: b.side,
			TIF: tif, Price: b.price, Qty: b.qty}
	case obbench.OpReplace:
		*cmd = core.Command{Kind: core.CmdReplace, Participant: b.part, OrderID: b.orderID, Price: b.price, Qty: b.qty, OpenQty: true}
	case obbench.OpCancel:
		*cmd = core.Command{Kind: core.CmdCancel, Participant: b.part, OrderID: b.orderID}
	}
}

// BenchMatchingResult is what `bcx bench matching` prints.
type BenchMatchingResult struct {
	Workload    string  `json:"workload"`
	Ops         int64   `json:"ops"`
	CmdsPerSec  int64   `json:"cmds_per_sec"`
	P50Us       float64 `json:"p50_us"`
	P99Us       float64 `json:"p99_us"`
	Fsyncs      uint64  `json:"fsyncs"`
	Batches     int64   `json:"batches"`
	BatchMax    int     `json:"batch_max"`
	Trades      int64   `json:"trades"`
	Refused     int64   `json:"refused"`
	JournalMB   float64 `json:"journal_mb"`
	Snapshots   bool    `json:"snapshots"`
	Latency     string  `json:"latency"`
	AllocsPerOp float64 `json:"allocs_per_op"`
	benchFsyncs
	benchSnapshots
}

// benchFsyncs is the distribution of the journal's batch fdatasyncs during
// a benchmark: the floor under durable latency on the machine it ran on.
// fsync_time_p99_us is the sync that 1% of the time spent syncing was spent
// in syncs longer than: orders pile up during a slow sync, so it is close
// to what the slowest 1% of orders wait for the disk alone.
type benchFsyncs struct {
	FsyncP50Us     float64 `json:"fsync_p50_us"`
	FsyncP99Us     float64 `json:"fsync_p99_us"`
	FsyncP999Us    float64 `json:"fsync_p999_us"`
	FsyncMaxUs     float64 `json:"fsync_max_us"`
	FsyncTimeP99Us float64 `json:"fsync_time_p99_us"`
}

// benchSnapshots are the sequencer's stops to encode snapshots during a
// run (Service.SnapshotStalls).
type benchSnapshots struct {
	SnapshotStalls     uint64  `json:"snapshot_stalls"`
	SnapshotStallMaxMs float64 `json:"snapshot_stall_max_ms"`
}

func snapshotStats(before, after latency.Histogram) benchSnapshots {
	h := after.Sub(before)
	return benchSnapshots{SnapshotStalls: h.Count(), SnapshotStallMaxMs: float64(h.Max().Microseconds()) / 1000}
}

func fsyncStats(before, after journal.Stats) benchFsyncs {
	h := after.Syncs.Sub(before.Syncs)
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) }
	return benchFsyncs{FsyncP50Us: us(h.Quantile(0.50)), FsyncP99Us: us(h.Quantile(0.99)),
		FsyncP999Us: us(h.Quantile(0.999)), FsyncMaxUs: us(h.Max()), FsyncTimeP99Us: us(h.TimeQuantile(0.99))}
}

// BenchMatchingMain runs the core with the real journal (fsync on) and
// risk checks on the standard order book workload (82% replace, 9% new
// GTC, 6% cancel, 3% IOC, about 1,000 resting orders over about 750
// levels), exactly as the sequencer does: batches of up to --batch
// commands, one record per command, the writer's group commit. Commands
// are generated before timing. Flags: --ops, --seed, --batch, --dir
// (default a temporary directory, removed after).
func BenchMatchingMain(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("matching", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	ops := fs.Int64("ops", 5_000_000, "measured commands")
	seed := fs.Uint64("seed", 1, "workload seed")
	batch := fs.Int("batch", 8192, "commands per batch")
	dir := fs.String("dir", "", "data directory (default: a temporary one)")
	noSnap := fs.Bool("no-snapshots", false, "disable the scheduled snapshots")
	snapMode := fs.String("snapshots", "auto", "where scheduled snapshots are encoded: auto, sequencer or replica (see Config.Snapshots)")
	noSync := fs.Bool("no-sync", false, "skip fsync (diagnosis only: the result is not the benchmark)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the measured run here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	d, cleanup, err := benchDir(*dir)
	if err != nil {
		return err
	}
	defer cleanup()
	mode, err := ParseSnapshotMode(*snapMode)
	if err != nil {
		return err
	}
	cfg := Config{DataDir: d, BatchMax: *batch, NoSync: *noSync, Snapshots: mode, Limits: core.Limits{MaxOrdersPerBook: 1 << 14}}
	if *noSnap {
		cfg.SnapshotEvery = 1 << 62
	}
	s, err := New(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := benchSetup(s); err != nil {
		return err
	}
	// The snapshotter runs as in the service (the sequencer only hands it
	// sequence numbers; it replays its replica of the core to each and
	// writes the replica's snapshot). It stops before the journal closes.
	snapCtx, stopSnaps := context.WithCancel(context.Background())
	snapDone := make(chan struct{})
	defer func() { stopSnaps(); <-snapDone }()
	go func() { s.snapshotLoop(snapCtx); close(snapDone) }()
	prefill, cmds, err := benchWorkload(*seed, *ops, 1)
	if err != nil {
		return err
	}
	res, err := s.runBench(prefill, *batch)
	if err != nil {
		return err
	}
	if res.refused > 0 {
		return fmt.Errorf("bench: %d prefill commands refused", res.refused)
	}
	runtime.GC()
	before, snapsBefore := s.j.Stats(), s.SnapshotStalls()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	res, err = s.runBench(cmds, *batch)
	stopProfile()
	if err != nil {
		return err
	}
	runtime.ReadMemStats(&ms1)
	after := s.j.Stats()
	out := BenchMatchingResult{Workload: "standard", Ops: *ops, CmdsPerSec: int64(float64(*ops) / res.elapsed.Seconds()),
		P50Us: res.pct(0.50), P99Us: res.pct(0.99), Fsyncs: after.Fsyncs - before.Fsyncs, Batches: res.batches,
		BatchMax: *batch, Trades: res.trades, Refused: res.refused, JournalMB: float64(after.Bytes-before.Bytes) / (1 << 20),
		Snapshots: !*noSnap, Latency: "per command: start of its batch's apply to the batch durable (fsync done)",
		AllocsPerOp: float64(ms1.Mallocs-ms0.Mallocs) / float64(*ops), benchFsyncs: fsyncStats(before, after),
		benchSnapshots: snapshotStats(snapsBefore, s.SnapshotStalls())}
	return json.NewEncoder(stdout).Encode(out)
}

// startCPUProfile profiles the process's CPU into path until stop is
// called; an empty path profiles nothing.
func startCPUProfile(path string) (stop func(), err error) {
	return startRecording(path, pprof.StartCPUProfile, pprof.StopCPUProfile)
}

// startTrace writes an execution trace to path until stop is called; an
// empty path traces nothing.
func startTrace(path string) (stop func(), err error) {
	return startRecording(path, trace.Start, trace.Stop)
}

// writeHeapProfile writes a profile of the live heap to path, after a
// collection; an empty path writes nothing. Large live pointerful memory
// is what the collector's marks take long on.
func writeHeapProfile(path string) error {
	if path == "" {
		return nil
	}
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func startRecording(path string, start func(io.Writer) error, end func()) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := start(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { end(); f.Close() }, nil
}

func benchDir(dir string) (string, func(), error) {
	if dir != "" {
		return dir, func() {}, os.MkdirAll(dir, 0o755)
	}
	d, err := os.MkdirTemp("", "bcx-bench-*")
	if err != nil {
		return "", nil, err
	}
	return d, func() { os.RemoveAll(d) }, nil
}

type benchRun struct {
	elapsed time.Duration
	lat     []float64 // µs per command (one sample per batch, weighted below)
	weights []int
	batches int64
	trades  int64
	refused int64
}

func (b *benchRun) pct(q float64) float64 {
	type s struct {
		v float64
		w int
	}
	xs := make([]s, len(b.lat))
	total := 0
	for i := range b.lat {
		xs[i] = s{b.lat[i], b.weights[i]}
		total += b.weights[i]
	}
	slices.SortFunc(xs, func(a, b s) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	target := int(q * float64(total))
	acc := 0
	for _, x := range xs {
		acc += x.w
		if acc > target {
			return float64(int(x.v*10)) / 10
		}
	}
	if len(xs) == 0 {
		return 0
	}
	return xs[len(xs)-1].v
}

// runBench drives the sequencer's batch path over pre-generated commands.
// A producer goroutine turns them into requests a batch ahead, as the
// service's gRPC handlers convert requests on their own goroutines while
// the sequencer applies: six sets of requests rotate between the
// producer (filling), the sequencer (applying) and the writer (writing,
// and pending durability), with room to spare.
func (s *Service) runBench(cmds []benchCmd, batchMax int) (*benchRun, error) {
	q := s.seq
	run := &benchRun{}
	const sets = 6
	var bufs [sets][]*request
	for i := range bufs {
		bufs[i] = make([]*request, batchMax)
		for k := range bufs[i] {
			bufs[i][k] = &request{notify: func(*request) {}}
		}
	}
	type filled struct {
		set, from, n int
	}
	ready := make(chan filled, sets)
	free := make(chan int, sets)
	for i := range sets {
		free <- i
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for done := 0; done < len(cmds); {
			var set int
			select {
			case set = <-free:
			case <-stop:
				return
			}
			n := min(batchMax, len(cmds)-done)
			for i, r := range bufs[set][:n] {
				cmds[done+i].fill(&r.cmd)
			}
			ready <- filled{set, done, n}
			done += n
		}
	}()
	// The writer stage runs as in the service; each batch's set goes back
	// to the producer once the writer has answered it.
	q.startWriter()
	stopWriter := sync.OnceFunc(func() {
		// The writer finishes what it was handed, answers it and stops.
		close(q.out)
		<-q.wExit
	})
	defer stopWriter() // on an early return too
	var mu sync.Mutex  // run.lat and run.weights, appended by the writer
	var last time.Time
	start := time.Now()
	for done := 0; done < len(cmds); {
		f := <-ready
		b, err := q.freeBatch()
		if err != nil {
			return nil, err
		}
		b.reqs = append(b.reqs, bufs[f.set][:f.n]...)
		t0 := time.Now()
		q.applyBatch(b)
		for i, r := range b.reqs {
			if r.res.Status != core.StatusOK || (r.cmd.Kind == core.CmdPlace && r.res.Order.ID != cmds[f.from+i].orderID) {
				run.refused++
			}
			run.trades += int64(len(r.res.Fills))
		}
		n, set := f.n, f.set
		b.released = func() {
			t1 := time.Now()
			mu.Lock()
			run.lat = append(run.lat, float64(t1.Sub(t0).Nanoseconds())/1000)
			run.weights = append(run.weights, n)
			last = t1
			mu.Unlock()
			drainMD(s)
			free <- set
		}
		if err := q.hand(b); err != nil {
			return nil, err
		}
		done += f.n
		run.batches++
	}
	stopWriter()
	if q.wErr != nil {
		return nil, q.wErr
	}
	run.elapsed = last.Sub(start)
	return run, nil
}

// drainMD stands in for the publisher: the bench measures the core, and the
// publisher runs on another goroutine anyway.
func drainMD(s *Service) {
	for {
		select {
		case b := <-s.mdCh:
			s.recycleMD(b)
		default:
			return
		}
	}
}

// BenchRecoveryResult is what `bcx bench recovery` prints.
type BenchRecoveryResult struct {
	Ops            int64   `json:"ops"`
	RecoverSeconds float64 `json:"recover_seconds"`
	SnapshotSeq    uint64  `json:"snapshot_seq"`
	Replayed       uint64  `json:"replayed"`
	JournalMB      float64 `json:"journal_mb"`
	SnapshotEvery  uint64  `json:"snapshot_every"`
	WriteSeconds   float64 `json:"write_seconds"`
	OpenSeconds    float64 `json:"open_journal_seconds"`
	LoadSeconds    float64 `json:"load_snapshot_seconds"`
	ReplaySeconds  float64 `json:"replay_seconds"`
}

// BenchRecoveryMain journals --ops commands of the standard workload
// through the sequencer (snapshots every --snapshot-every records, as the
// service does), closes the journal, and measures how long New takes to
// recover: open and verify the journal, load the newest snapshot, replay
// the tail (re-applying every command and checking its events).
func BenchRecoveryMain(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("recovery", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	ops := fs.Int64("ops", 10_000_000, "commands to journal")
	seed := fs.Uint64("seed", 1, "workload seed")
	every := fs.Uint64("snapshot-every", 1_000_000, "journal records between snapshots")
	dir := fs.String("dir", "", "data directory (default: a temporary one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	d, cleanup, err := benchDir(*dir)
	if err != nil {
		return err
	}
	defer cleanup()
	cfg := Config{DataDir: d, SnapshotEvery: *every, NoSync: true, Limits: core.Limits{MaxOrdersPerBook: 1 << 14}}
	s, err := New(cfg)
	if err != nil {
		return err
	}
	if err := benchSetup(s); err != nil {
		return err
	}
	writeStart := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	snapDone := make(chan struct{})
	go func() { s.snapshotLoop(ctx); close(snapDone) }()
	const chunk = 1 << 20
	w, err := obbench.NewWorkload("standard", *seed)
	if err != nil {
		return err
	}
	// Generate in chunks so memory stays bounded.
	gen := &chunkedWorkload{w: w, coreID: make([]int64, 1<<17), owner: make([]int64, 1<<17), next: 1}
	if _, err := s.runBench(gen.prefill(), 8192); err != nil {
		return err
	}
	for done := int64(0); done < *ops; done += chunk {
		cmds := gen.nextChunk(min(chunk, *ops-done))
		if _, err := s.runBench(cmds, 8192); err != nil {
			return err
		}
	}
	// Let the last scheduled snapshot finish, then stop.
	for s.snapBusy.Load() {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-snapDone
	writeSecs := time.Since(writeStart).Seconds()
	st := s.j.Stats()
	if err := s.Close(); err != nil {
		return err
	}
	runtime.GC()
	t0 := time.Now()
	s2, err := New(Config{DataDir: d, NoSync: true, Limits: cfg.Limits})
	if err != nil {
		return err
	}
	secs := time.Since(t0).Seconds()
	rec := s2.Recovery()
	s2.Close()
	size, _ := dirSize(filepath.Join(d, "journal"))
	_ = st
	return json.NewEncoder(stdout).Encode(BenchRecoveryResult{Ops: *ops, RecoverSeconds: float64(int(secs*1000)) / 1000,
		SnapshotSeq: rec.SnapshotSeq, Replayed: rec.Replayed, JournalMB: float64(size) / (1 << 20), SnapshotEvery: *every,
		WriteSeconds: float64(int(writeSecs*10)) / 10, OpenSeconds: rec.OpenJournal.Seconds(), LoadSeconds: rec.LoadSnapshot.Seconds(),
		ReplaySeconds: rec.Replay.Seconds()})
}

// chunkedWorkload converts the workload's commands, resolving order ids
// to the core's (places get consecutive ids) and naming the owner of
// cancels and replaces.
type chunkedWorkload struct {
	w      *obbench.Workload
	coreID []int64 // by workload handle
	owner  []int64
	next   int64
}

func (g *chunkedWorkload) convert(c *obbench.Cmd) benchCmd {
	const handleMask = 1<<17 - 1
	b := benchCmd{op: c.Op, side: c.Side, part: c.Participant, price: c.Price, qty: c.Qty}
	h := c.ID & handleMask
	switch c.Op {
	case obbench.OpNew, obbench.OpIOC:
		b.orderID = g.next // the id the core must give it
		g.coreID[h], g.owner[h] = g.next, c.Participant
		g.next++
	default:
		b.orderID, b.part = g.coreID[h], g.owner[h]
	}
	return b
}

func (g *chunkedWorkload) prefill() []benchCmd {
	var out []benchCmd
	for _, c := range g.w.Prefill() {
		out = append(out, g.convert(&c))
	}
	return out
}

func (g *chunkedWorkload) nextChunk(n int64) []benchCmd {
	out := make([]benchCmd, 0, n)
	buf := make([]obbench.Cmd, obbench.ChunkSize)
	for int64(len(out)) < n {
		for _, c := range g.w.Next(buf[:min(int64(len(buf)), n-int64(len(out)))]) {
			out = append(out, g.convert(&c))
		}
	}
	return out
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n += info.Size()
		}
		return nil
	})
	return n, err
}
