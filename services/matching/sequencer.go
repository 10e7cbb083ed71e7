package matching

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/bcx-exchange/bcx/pkg/journal"
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

// sequencer is the goroutine that owns the core.
type sequencer struct {
	s        *Service
	c        *core.Core
	j        *journal.Journal
	clock    func() time.Time
	batchMax int
	depth    int

	defNums   []int64 // instrument number by definition index
	regSizes  [3]int
	sinceSnap uint64
	forceMD   bool // the publisher lost a batch: send every instrument next time
	// The sizes of the last snapshot's parts, to size the next buffers.
	snapHead, snapTail int
	// lastTrades is the most trades one instrument had in the last batch,
	// to size the next batch's lists.
	lastTrades int
	// wakes lists the order entry streams answered in the batch being
	// released; wakeGen tells which are listed already.
	wakes   []*entryWaker
	wakeGen uint64
}

func newSequencer(s *Service) *sequencer {
	return &sequencer{s: s, c: s.core, j: s.j, clock: s.cfg.Clock, batchMax: s.cfg.BatchMax, depth: s.cfg.MarketDepth, forceMD: true}
}

// run is the sequencer loop: take a batch, apply it, hand it to the journal
// to sync, and answer the previous batch once it is durable.
func (q *sequencer) run(ctx context.Context) error {
	s := q.s
	cur := make([]*request, 0, q.batchMax)
	var pending []*request
	var pendingMD *mdBatch
	fail := func(err error) error {
		s.fatal.Store(&err)
		if errors.Is(err, context.Canceled) {
			s.log.Info("matching core stopped")
		} else {
			s.log.Error("matching core stopped", "error", err)
		}
		for _, r := range pending {
			r.err = errUnavailable(err)
			r.answer()
		}
		for _, r := range cur {
			r.err = errUnavailable(err)
			r.answer()
		}
		close(s.stopped)
		// Answer whatever is still queued or arrives before handlers see
		// s.fatal (they check it before enqueueing).
		go func() {
			for {
				select {
				case r := <-s.in:
					r.err = errUnavailable(err)
					r.answer()
				case <-time.After(5 * time.Second):
					return
				}
			}
		}()
		return err
	}
	for {
		cur = cur[:0]
		if len(pending) == 0 {
			select {
			case r := <-s.in:
				cur = append(cur, r)
			case <-ctx.Done():
				return fail(ctx.Err())
			}
		}
	drain:
		for len(cur) < q.batchMax {
			select {
			case r := <-s.in:
				cur = append(cur, r)
			default:
				break drain
			}
		}
		if len(cur) == 0 {
			// Nothing new: finish the batch in flight.
			if err := q.j.Sync(); err != nil {
				return fail(err)
			}
			q.release(pending, pendingMD)
			pending, pendingMD = pending[:0], nil
			continue
		}
		md, err := q.applyBatch(cur)
		if err != nil {
			return fail(err)
		}
		if _, err := q.j.SyncAsync(); err != nil {
			return fail(err)
		}
		// SyncAsync waited for the previous batch: it is durable.
		q.release(pending, pendingMD)
		pending = append(pending[:0], cur...)
		pendingMD = md
	}
}

// release answers a durable batch and publishes its market data. An order
// entry stream's sender is woken once for all its answers in the batch.
func (q *sequencer) release(batch []*request, md *mdBatch) {
	q.wakeGen++
	for _, r := range batch {
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
	if md == nil || len(md.ups) == 0 {
		return
	}
	select {
	case q.s.mdCh <- md:
	default:
		// The publisher is behind: drop this batch (its trade prints are
		// lost to the stream, never the book) and resend every instrument's
		// book next time.
		q.forceMD = true
	}
}

// applyBatch applies a batch to the core and appends its records.
func (q *sequencer) applyBatch(batch []*request) (*mdBatch, error) {
	md := &mdBatch{}
	// The commands of a batch share one time stamp, taken as it starts:
	// they are applied within a millisecond or so, and reading the clock
	// per command would cost more than applying some of them.
	ts := q.clock().UnixNano()
	for _, r := range batch {
		if r.query != nil {
			r.query(q.c)
			continue
		}
		if err := q.apply(r, md, ts); err != nil {
			return nil, err
		}
	}
	q.publishRegistry(false)
	// The history gets the batch's trades now, before they are durable
	// (it lists only durable ones): by the time any of them is answered or
	// streamed from the journal, it has them.
	q.s.hist.hand(md.hist)
	md.hist = nil
	q.captureMarket(md)
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
			q.s.snapBusy.Store(false)
		}
	}
	return md, nil
}

func (q *sequencer) apply(r *request, md *mdBatch, ts int64) error {
	seq := q.j.NextSeq()
	q.c.Apply(seq, ts, &r.cmd, &r.res)
	if !r.res.Changed {
		return nil
	}
	ev := q.c.Events()
	if _, err := q.j.AppendFunc(journal.Kind(r.cmd.Kind), ts, func(dst []byte) []byte {
		return core.AppendRecord(dst, &r.cmd, ev)
	}); err != nil {
		return err
	}
	q.sinceSnap++
	if md != nil {
		q.collect(ev, ts, seq, md)
		md.hist = appendHistItems(md.hist, seq, ts, ev)
	}
	return nil
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
	hash       uint64 // if hashed
}

// snapshot encodes the core now, for an operator's snapshot (hashed) or a
// scheduled one with SnapshotsOnSequencer. The sequencer waits for the
// encoding (the core must not change under it), so it is done in two
// parts on two cores.
func (q *sequencer) snapshot(hash bool) snapJob {
	head, tail := q.c.SnapshotParts(make([]byte, 0, q.snapHead+q.snapHead/4), make([]byte, 0, q.snapTail+q.snapTail/4))
	q.snapHead, q.snapTail = len(head), len(tail)
	job := snapJob{seq: q.c.LastSeq(), head: head, tail: tail}
	if hash {
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

// TakeSnapshot writes a snapshot of the core now and returns its sequence
// number and state hash.
func (s *Service) TakeSnapshot(ctx context.Context) (uint64, uint64, error) {
	var job snapJob
	if err := s.query(ctx, func(*core.Core) { job = s.seq.snapshot(true) }); err != nil {
		return 0, 0, err
	}
	return job.seq, job.hash, s.writeSnapshot(ctx, job)
}

// StateHash returns the core's state hash and sequence number, consistent
// with each other.
func (s *Service) StateHash(ctx context.Context) (uint64, uint64, error) {
	var h, seq uint64
	err := s.query(ctx, func(c *core.Core) { h, seq = c.StateHash(), c.LastSeq() })
	return h, seq, err
}
