package matching

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/bcx-exchange/bcx/pkg/journal"
	"github.com/bcx-exchange/bcx/pkg/prefault"
	"github.com/bcx-exchange/bcx/pkg/rpcerr"
	"github.com/bcx-exchange/bcx/services/matching/core"
)

// request is one command or query on its way through the sequencer.
// Requests are pooled: whoever gets one back from the sequencer owns it
// again and returns it with putRequest.
type request struct {
	// query, if set, makes this a read: it runs on the sequencer against the
	// core and is answered with its batch; cmd is ignored. It comes first so
	// the sequencer's check shares a cache line with the command's hot
	// fields (a request is ~720 bytes).
	query func(c *core.Core)
	cmd   core.Command
	res   core.Result
	err   error // the service failed before the request became durable
	// seq is the command's record's sequence number (if it changed state)
	// and its events are its batch's ev.List[evFrom:evTo], for the writer
	// to encode.
	seq          uint64
	evFrom, evTo int32

	// notify is called by the sequencer once the request is answered; nil
	// signals done (unless waker is set).
	notify func(*request)
	done   chan struct{}
	// waker, if set, is the order entry stream the request came on: it is
	// answered by setting answered and waking the stream's sender.
	waker    *entryWaker
	answered atomic.Bool
	// tag is the caller's, e.g. a stream's correlation id.
	tag uint64
	op  uint8
	// enqueued is when the request was handed to the sequencer, for the
	// service's answer latency (zero: not measured).
	enqueued time.Time
}

// entryWaker wakes an order entry stream's sender (see OrderEntry).
type entryWaker struct {
	ch  chan struct{} // capacity 1: a wake that finds one pending is dropped
	gen uint64        // the sequencer's: the last batch that woke it
}

func newEntryWaker() *entryWaker { return &entryWaker{ch: make(chan struct{}, 1)} }

func (w *entryWaker) wake() {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

var requestPool = sync.Pool{New: func() any { return &request{done: make(chan struct{}, 1)} }}

func getRequest() *request {
	r := requestPool.Get().(*request)
	return r
}

func putRequest(r *request) {
	fills := r.res.Fills[:0]
	syms := r.cmd.Symbols[:0]
	done := r.done
	*r = request{done: done}
	r.res.Fills = fills
	r.cmd.Symbols = syms
	requestPool.Put(r)
}

func (r *request) answer() {
	// Once answered is set the request is the stream sender's, which may
	// recycle it at once: read the waker first.
	if w := r.waker; w != nil {
		r.answered.Store(true)
		w.wake()
		return
	}
	if r.notify != nil {
		r.notify(r)
		return
	}
	r.done <- struct{}{}
}

var errOverloaded = &rpcerr.Error{Code: codes.ResourceExhausted, Reason: "OVERLOADED", Msg: "the matching core is overloaded; retry"}

func errUnavailable(err error) error {
	return &rpcerr.Error{Code: codes.Unavailable, Reason: "UNAVAILABLE", Msg: fmt.Sprintf("matching core stopped: %v", err)}
}

// enqueue hands a request to the sequencer, waiting for room up to the
// enqueue timeout or the context. Once enqueue succeeds the request will be
// answered: the caller must wait for it before reusing it.
func (s *Service) enqueue(ctx context.Context, r *request) error {
	if p := s.fatal.Load(); p != nil {
		return errUnavailable(*p)
	}
	if r.query == nil {
		r.enqueued = time.Now()
	}
	select {
	case s.in <- r:
		return nil
	default:
	}
	t := time.NewTimer(s.cfg.EnqueueTimeout)
	defer t.Stop()
	select {
	case s.in <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errOverloaded
	case <-s.stopped:
		return errUnavailable(errors.New("shut down"))
	}
}

// do runs a request to completion (unary calls).
func (s *Service) do(ctx context.Context, r *request) error {
	if err := s.enqueue(ctx, r); err != nil {
		return err
	}
	<-r.done
	return r.err
}

// command runs one command and returns its result (a copy; fills
// included). The request is recycled.
func (s *Service) command(ctx context.Context, cmd core.Command) (core.Result, error) {
	r := getRequest()
	defer putRequest(r)
	r.cmd = cmd
	if err := s.do(ctx, r); err != nil {
		return core.Result{}, err
	}
	res := r.res
	res.Fills = append([]core.Fill(nil), r.res.Fills...)
	return res, nil
}

// query runs fn on the sequencer and returns once its batch is durable.
func (s *Service) query(ctx context.Context, fn func(c *core.Core)) error {
	r := getRequest()
	defer putRequest(r)
	r.query = fn
	return s.do(ctx, r)
}

// sequencer is the goroutine that owns the core, and the writer stage after
// it. The sequencer applies a batch, the commands' events going one after
// another into one list of the batch, and hands the batch to the writer,
// which encodes and appends the records, makes them durable (group commit:
// see write) and answers the batch once it is: encoding and answering run
// beside the next batch's apply instead of before it.
type sequencer struct {
	s        *Service
	c        *core.Core
	j        *journal.Journal
	clock    func() time.Time
	batchMax int
	depth    int

	// next is the sequence number of the next record: the sequencer
	// stamps commands with it, and the writer appends in the same order.
	next      uint64
	defNums   []int64 // instrument number by definition index
	regSizes  [3]int
	sinceSnap uint64
	forceMD   atomic.Bool // the publisher lost a batch: send every instrument next time
	// Snapshots made here, head and tail: the last one's sizes and the
	// core's size hint then; and for the next, once snapReady, the sizes
	// expected, the buffers ready and those being prepared (see
	// readySnapshotBuffers).
	snapLast, lastHint, snapHint [2]int
	snapPre                      [2]int // the last deferred snapshot's pre and tailPre sizes
	snapReady                    bool
	snapBufs                     [2][]byte
	snapSpares                   [2]prefault.Spare[byte]
	// lastTrades is the most trades one instrument had in the last batch,
	// to size the next batch's lists.
	lastTrades int

	// The writer's: batches to write, batches to refill, its end.
	out, free chan *outBatch
	// wDone is closed when the writer takes no more batches: wErr, set
	// before, says why (nil: out was closed). wExit is closed when it has
	// answered everything it was handed and returned.
	wDone, wExit chan struct{}
	wErr         error
	// wakes lists the order entry streams answered in the batch being
	// released; wakeGen tells which are listed already.
	wakes   []*entryWaker
	wakeGen uint64
}

// outBatch is a batch on its way from the sequencer to the writer.
type outBatch struct {
	reqs []*request
	ev   core.Events // the commands' events, one after another
	md   *mdBatch
	ts   int64
	// released, if set, is called by the writer once the batch is
	// durable and answered (the bench's hook).
	released func()
}

// writerDepth is how many batches the sequencer may have handed to the
// writer and not yet seen answered: the writer holds the batch being
// synced and those appended for the next fsync. When it holds them all,
// the sequencer waits, and the requests queued meanwhile make one larger
// batch.
const writerDepth = 3

func newSequencer(s *Service) *sequencer {
	q := &sequencer{s: s, c: s.core, j: s.j, clock: s.cfg.Clock, batchMax: s.cfg.BatchMax, depth: s.cfg.MarketDepth,
		next: s.j.NextSeq()}
	q.forceMD.Store(true)
	return q
}

// startWriter starts the writer stage.
func (q *sequencer) startWriter() {
	q.out = make(chan *outBatch, writerDepth)
	q.free = make(chan *outBatch, writerDepth)
	for range writerDepth {
		q.free <- &outBatch{reqs: make([]*request, 0, q.batchMax)}
	}
	q.wDone, q.wExit = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(q.wExit)
		q.write()
	}()
}

// run is the sequencer loop: take a batch, apply it, hand it to the writer.
func (q *sequencer) run(ctx context.Context) error {
	s := q.s
	q.startWriter()
	for {
		b, err := q.freeBatch()
		if err != nil {
			return q.stop(err, nil)
		}
		select {
		case r := <-s.in:
			b.reqs = append(b.reqs, r)
		case <-ctx.Done():
			return q.stop(ctx.Err(), nil)
		case <-q.wDone:
			return q.stop(q.wErr, nil)
		}
	drain:
		for len(b.reqs) < q.batchMax {
			select {
			case r := <-s.in:
				b.reqs = append(b.reqs, r)
			default:
				break drain
			}
		}
		q.applyBatch(b)
		if err := q.hand(b); err != nil {
			return q.stop(err, b.reqs)
		}
	}
}

// freeBatch returns an empty batch to fill, once the writer has answered
// one, or reports why the writer stopped.
func (q *sequencer) freeBatch() (*outBatch, error) {
	select {
	case b := <-q.free:
		return b, nil
	case <-q.wDone:
		return nil, q.wErr
	}
}

// hand gives a batch to the writer, or reports why the writer stopped.
func (q *sequencer) hand(b *outBatch) error {
	select {
	case <-q.wDone:
		// Checked first: a send could still find room after the writer
		// stopped.
		return q.wErr
	default:
	}
	select {
	case q.out <- b:
		return nil
	case <-q.wDone:
		return q.wErr
	}
}

// stop ends the sequencer: the writer finishes what it was handed (on a
// context's end it makes it durable and answers it), unhanded requests
// and whatever is still queued are answered Unavailable.
func (q *sequencer) stop(err error, unhanded []*request) error {
	s := q.s
	close(q.out)
	<-q.wExit
	if q.wErr != nil {
		err = q.wErr
	}
	s.fatal.Store(&err)
	if errors.Is(err, context.Canceled) {
		s.log.Info("matching core stopped")
	} else {
		s.log.Error("matching core stopped", "error", err)
	}
	answerUnavailable(unhanded, err)
	close(s.stopped)
	// Answer whatever is still queued or arrives before handlers see
	// s.fatal (they check it before enqueueing).
	go func() {
		for {
			select {
			case r := <-s.in:
				answerUnavailable([]*request{r}, err)
			case <-time.After(5 * time.Second):
				return
			}
		}
	}()
	return err
}

// write is the writer loop, a group commit: it appends each batch's
// records as the batch arrives, and whenever no fsync is in flight it
// starts one for everything appended so far. Batches that arrive while an
// fsync runs all share the next one, so an order waits for at most the
// fsync in flight and its own, however small the sequencer's batches are
// (one fsync per batch queued them behind each other at moderate rates).
// A batch is answered once its fsync is done. On a journal error the
// writer answers everything it holds Unavailable and stops; when out is
// closed it makes everything durable, answers it and stops.
func (q *sequencer) write() {
	// inFlight are being synced; appended have their records in the
	// journal's buffer, for the next fsync.
	var inFlight, appended []*outBatch
	// fail stops the writer on err. What the fsync in flight made durable
	// is answered as such (unless lost: its own sync failed); everything
	// else is answered Unavailable, and the journal discards the records
	// it holds. On the writer's own errors (the size limit, the sequence
	// check) nothing answered Unavailable is ever durable. After an I/O
	// error, part of a failed batch may have reached the disk (the records
	// before a segment roll, or bytes whose fdatasync failed): Unavailable
	// then means the outcome is unknown, and a retry with the same client
	// order id or idempotency key returns the original result if it was.
	fail := func(err error, inFlightLost bool, bs ...*outBatch) {
		if ierr := q.j.Abandon(err); ierr != nil {
			inFlightLost = true
			err = errors.Join(err, ierr)
		}
		if !inFlightLost {
			for _, b := range inFlight {
				q.release(b)
			}
			inFlight = nil
		}
		for _, b := range slices.Concat(bs, inFlight, appended) {
			answerUnavailable(b.reqs, err)
		}
		// The sequencer sends nothing more once wDone is closed; what it
		// sent before is answered here until it closes out.
		q.wErr = err
		close(q.wDone)
		for b := range q.out {
			answerUnavailable(b.reqs, err)
		}
	}
	// startSync collects the fsync in flight (SyncAsync waits for it),
	// answers its batches and starts one for the appended batches. On an
	// error the batches in flight are not durable.
	startSync := func() error {
		if _, err := q.j.SyncAsync(); err != nil {
			return err
		}
		for _, b := range inFlight {
			q.release(b)
		}
		clear(inFlight)
		inFlight, appended = append(inFlight[:0], appended...), appended[:0]
		if !q.j.InFlight() {
			// Nothing was handed: the batches hold no records (queries,
			// refusals), so there is nothing to wait for.
			for _, b := range inFlight {
				q.release(b)
			}
			clear(inFlight)
			inFlight = inFlight[:0]
		}
		return nil
	}
	for {
		if len(inFlight) == 0 && len(appended) > 0 {
			if err := startSync(); err != nil {
				fail(err, true)
				return
			}
		}
		select {
		case b, ok := <-q.out:
			if !ok {
				// Make everything durable and answer it: the fsync in
				// flight first, then one for the rest.
				for len(inFlight)+len(appended) > 0 {
					if err := startSync(); err != nil {
						fail(err, true)
						return
					}
				}
				close(q.wDone)
				return
			}
			if err := q.appendBatch(b); err != nil {
				fail(err, false, b)
				return
			}
			appended = append(appended, b)
		case <-q.j.Flushed():
			if err := startSync(); err != nil {
				fail(err, true)
				return
			}
		}
	}
}

// appendBatch appends the records of b's commands that changed state.
func (q *sequencer) appendBatch(b *outBatch) error {
	for _, r := range b.reqs {
		if r.query != nil || !r.res.Changed {
			continue
		}
		ev := eventsOf(&b.ev, r)
		if err := q.appendRecord(r, b.ts, &ev); err != nil {
			return err
		}
	}
	return nil
}

// eventsOf are r's events in its batch's list ev. Their payloads stay in
// the batch's shared lists, which they index absolutely.
func eventsOf(ev *core.Events, r *request) core.Events {
	return core.Events{List: ev.List[r.evFrom:r.evTo], Orders: ev.Orders, Trades: ev.Trades, Details: ev.Details,
		Allocs: ev.Allocs}
}

// answerUnavailable answers requests the service could not make durable.
func answerUnavailable(reqs []*request, err error) {
	for _, r := range reqs {
		r.err = errUnavailable(err)
		r.answer()
	}
}

// appendRecord appends r's record, its command and events ev, which must
// get the sequence number the core stamped it with (checked first: a record
// under another number must never reach the journal).
func (q *sequencer) appendRecord(r *request, ts int64, ev *core.Events) error {
	if next := q.j.NextSeq(); next != r.seq {
		return fmt.Errorf("matching: record of seq %d would be appended as %d", r.seq, next)
	}
	_, err := q.j.AppendFunc(journal.Kind(r.cmd.Kind), ts, func(dst []byte) []byte {
		return core.AppendRecord(dst, &r.cmd, ev)
	})
	return err
}

// release answers a durable batch, publishes its market data and returns
// it to the sequencer. An order entry stream's sender is woken once for
// all its answers in the batch.
func (q *sequencer) release(b *outBatch) {
	q.wakeGen++
	now := time.Now()
	for _, r := range b.reqs {
		if !r.enqueued.IsZero() {
			q.s.answerLatency.Add(now.Sub(r.enqueued))
		}
		if w := r.waker; w != nil {
			// Once answered is set the request is the sender's: read w
			// first.
			r.answered.Store(true)
			if w.gen != q.wakeGen {
				w.gen = q.wakeGen
				q.wakes = append(q.wakes, w)
			}
			continue
		}
		r.answer()
	}
	for i, w := range q.wakes {
		w.wake()
		q.wakes[i] = nil
	}
	q.wakes = q.wakes[:0]
	if md := b.md; md != nil && len(md.ups) > 0 {
		select {
		case q.s.mdCh <- md:
		default:
			// The publisher is behind: drop this batch (its trade prints
			// are lost to the stream, never the book) and resend every
			// instrument's book next time.
			q.forceMD.Store(true)
			q.s.recycleMD(md)
		}
	} else if md != nil {
		q.s.recycleMD(md)
	}
	if b.released != nil {
		b.released()
	}
	clear(b.reqs)
	b.reqs, b.md, b.released = b.reqs[:0], nil, nil
	b.ev.Reset()
	q.free <- b
}

// applyBatch applies a batch to the core (a query runs where it stands)
// and sets its market data. The commands of a batch share one time stamp,
// b.ts, taken as it starts: they are applied within a millisecond or so,
// and reading the clock per command would cost more than applying some of
// them.
func (q *sequencer) applyBatch(b *outBatch) {
	b.ts = q.clock().UnixNano()
	md := q.s.newMDBatch()
	md.hist = q.s.hist.spare()
	b.md = md
	for _, r := range b.reqs {
		if r.query != nil {
			r.query(q.c)
			continue
		}
		q.apply(r, &b.ev, md, b.ts)
	}
	q.publishRegistry(false)
	// The history gets the batch's trades now, before they are durable
	// (it lists only durable ones): by the time any of them is answered or
	// streamed from the journal, it has them.
	q.s.hist.hand(md.hist)
	md.hist = nil
	q.captureMarket(md)
	// Halfway to a snapshot made here, its buffers are made ready (see
	// snapshotBuffers).
	if q.s.cfg.Snapshots == SnapshotsOnSequencer && 2*q.sinceSnap >= q.s.cfg.SnapshotEvery && !q.snapReady {
		q.readySnapshotBuffers()
	}
	// A scheduled snapshot is handed to the snapshotter when it is free
	// (else the sequencer tries again after the next batch): encoded here,
	// or, from a replica, only its sequence number (see SnapshotMode).
	if q.sinceSnap >= q.s.cfg.SnapshotEvery && q.s.snapBusy.CompareAndSwap(false, true) {
		job := snapJob{seq: q.c.LastSeq()}
		if q.s.cfg.Snapshots == SnapshotsOnSequencer {
			job = q.snapshot(false)
		}
		select {
		case q.s.snapCh <- job:
			q.sinceSnap = 0
		default: // not reached: the snapshotter empties the channel before it is free
			if job.rest != nil {
				job.rest.Release()
			}
			q.s.snapBusy.Store(false)
		}
	}
}

// apply applies one command, its events appended to ev, and stamps it
// with the next sequence number if it changed state (md nil: no market
// data or history, as for the bench's setup).
func (q *sequencer) apply(r *request, ev *core.Events, md *mdBatch, ts int64) {
	seq := q.next
	r.evFrom = int32(len(ev.List))
	q.c.ApplyTo(seq, ts, &r.cmd, &r.res, ev)
	r.evTo = int32(len(ev.List))
	if !r.res.Changed {
		return
	}
	r.seq = seq
	q.next++
	q.sinceSnap++
	if md != nil {
		mine := eventsOf(ev, r)
		q.collect(&mine, ts, seq, md)
		md.hist = appendHistItems(md.hist, seq, ts, &mine)
	}
}

// publishRegistry republishes the reference data when it grew.
func (q *sequencer) publishRegistry(force bool) {
	d, p, c := q.c.RegistrySize()
	if !force && q.regSizes == [3]int{d, p, c} {
		return
	}
	q.regSizes = [3]int{d, p, c}
	reg := newRegistry(q.c)
	q.defNums = q.defNums[:0]
	for _, def := range reg.core.Defs {
		q.defNums = append(q.defNums, def.Number)
	}
	q.s.reg.Store(reg)
}

// snapJob is a snapshot to write once its sequence number is durable:
// encoded on the sequencer (head and tail set), or, scheduled with
// SnapshotsFromReplica, to be made by the snapshotter from its replica.
type snapJob struct {
	seq        uint64
	head, tail []byte // the snapshot is head then tail (core.SnapshotParts)
	// rest, if set, is the snapshot's bulk still to be encoded
	// (core.SnapshotPartsDeferred): the snapshotter makes head and tail
	// from pre and tailPre, first thing.
	rest         *core.SnapshotRest
	pre, tailPre []byte
	hash         uint64 // if hashed
}

// snapshot encodes the core now, for an operator's snapshot (hashed), or
// starts a scheduled one with SnapshotsOnSequencer. The sequencer waits
// for the encoding (the core must not change under it): an operator's is
// done in two parts on two cores; of a scheduled one only the small parts
// are encoded here, and the rest by the snapshotter from a frozen view
// (core.SnapshotPartsDeferred).
func (q *sequencer) snapshot(operator bool) snapJob {
	start := time.Now()
	defer func() { q.s.snapStalls.Add(time.Since(start)) }()
	head, tail := q.snapshotBuffers(operator)
	var rest *core.SnapshotRest
	var pre, tailPre []byte
	if operator {
		head, tail = q.c.SnapshotParts(head, tail)
	} else {
		// The books' orders, the finished orders and the day's logs, most
		// of a snapshot, are encoded by the snapshotter after the
		// sequencer has moved on; here only the rest, pre and tailPre.
		pre, tailPre, rest = q.c.SnapshotPartsDeferred(make([]byte, 0, q.snapPre[0]+q.snapPre[0]/4),
			make([]byte, 0, q.snapPre[1]+q.snapPre[1]/4), q.s.snapExit)
		q.snapPre = [2]int{len(pre), len(tailPre)}
	}
	// A deferred snapshot is short of its bulk: keep the last whole sizes
	// known (readySnapshotBuffers learns them from the buffers given back).
	q.snapLast = [2]int{max(len(head), q.snapLast[0]), max(len(tail), q.snapLast[1])}
	q.lastHint[0], q.lastHint[1] = q.c.SnapshotSizeHint()
	job := snapJob{seq: q.c.LastSeq(), head: head, tail: tail, rest: rest, pre: pre, tailPre: tailPre}
	if operator {
		h := fnv.New64a()
		h.Write(head)
		h.Write(tail)
		job.hash = h.Sum64()
	}
	return job
}

func (s *Service) writeSnapshot(ctx context.Context, job snapJob) error {
	if job.seq == 0 {
		return nil // nothing to snapshot
	}
	if _, err := s.j.WaitDurable(ctx, job.seq); err != nil {
		return err
	}
	return s.j.SaveSnapshot(job.seq, func(w io.Writer) error {
		if _, err := w.Write(job.head); err != nil {
			return err
		}
		_, err := w.Write(job.tail)
		return err
	})
}

// readySnapshotBuffers gets ready, halfway to the next snapshot made on
// the sequencer, what it will write into: buffers for its head and tail,
// the last snapshot's, given back once written, if they are large enough
// for Core.SnapshotSizeHint, else new ones prepared and faulted in on
// another goroutine; and pages for the order store's copies on write
// while the snapshotter encodes (Core.PrepareDeferredSnapshot). Buffers
// written for the first time were 40% of an encoding (BenchmarkSnapshot:
// head and tail 66 and 59 ms into new buffers, 36 and 35 ms into used
// ones), and a state growing through the day outgrows the last snapshot's.
func (q *sequencer) readySnapshotBuffers() {
	q.snapReady = true
	q.c.PrepareDeferredSnapshot()
	if bufs, ok := q.s.snapBufs.get(); ok {
		// They hold the whole snapshot, logs included.
		q.snapBufs, q.snapLast = bufs, [2]int{len(bufs[0]), len(bufs[1])}
	}
	var now [2]int
	now[0], now[1] = q.c.SnapshotSizeHint()
	for i := range now {
		// The hint is from above (about 1.6 times on bench grpc's core):
		// after a first snapshot, its size grown as the hint has is
		// closer, with a tenth to spare.
		q.snapHint[i] = now[i]
		if q.snapLast[i] > 0 && q.lastHint[i] > 0 {
			q.snapHint[i] = int(float64(q.snapLast[i]) * float64(now[i]) / float64(q.lastHint[i]) * 1.1)
		}
	}
	for i := range q.snapBufs {
		if cap(q.snapBufs[i]) < q.snapHint[i] {
			q.snapBufs[i] = nil
			q.snapSpares[i].Prepare(q.snapHint[i])
		}
	}
}

// snapshotBuffers returns the buffers to encode a snapshot's head and tail
// into: those made ready (readySnapshotBuffers; a spare not yet ready is
// replaced by a new slice), else the last snapshot's if they are back,
// else new ones sized by the last snapshot. An operator's snapshot taken
// once buffers are ready leaves them to the scheduled one.
func (q *sequencer) snapshotBuffers(operator bool) (head, tail []byte) {
	// Sized by the last snapshot, a quarter to spare.
	sized := func(i int) []byte { return make([]byte, 0, q.snapLast[i]+q.snapLast[i]/4) }
	if operator && q.snapReady {
		return sized(0), sized(1)
	}
	if !q.snapReady {
		q.snapBufs, _ = q.s.snapBufs.get()
	}
	var b [2][]byte
	for i := range b {
		switch {
		case cap(q.snapBufs[i]) > 0:
			b[i] = q.snapBufs[i][:0]
		case q.snapReady:
			b[i] = q.snapSpares[i].Take(q.snapHint[i])[:0]
		default:
			b[i] = sized(i)
		}
	}
	q.snapBufs, q.snapReady = [2][]byte{}, false
	return b[0], b[1]
}

// recycleSnapshot gives a written snapshot's buffers back for the next
// one (see snapshot).
func (s *Service) recycleSnapshot(job snapJob) {
	if job.head != nil {
		s.snapBufs.put([2][]byte{job.head, job.tail}) // dropped if another snapshot's wait
	}
}

// TakeSnapshot writes a snapshot of the core now and returns its sequence
// number and state hash.
func (s *Service) TakeSnapshot(ctx context.Context) (uint64, uint64, error) {
	var job snapJob
	if err := s.query(ctx, func(*core.Core) { job = s.seq.snapshot(true) }); err != nil {
		return 0, 0, err
	}
	err := s.writeSnapshot(ctx, job)
	s.recycleSnapshot(job)
	return job.seq, job.hash, err
}

// StateHash returns the core's state hash and sequence number, consistent
// with each other.
func (s *Service) StateHash(ctx context.Context) (uint64, uint64, error) {
	var h, seq uint64
	err := s.query(ctx, func(c *core.Core) { h, seq = c.StateHash(), c.LastSeq() })
	return h, seq, err
}
