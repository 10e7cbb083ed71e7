package receipts_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	receiptsv1 "github.com/bcx-exchange/bcx/proto/bcx/receipts/v1"
	"github.com/bcx-exchange/bcx/services/listing"
	"github.com/bcx-exchange/bcx/services/receipts"
)

// hashOf is the chain's documented hash, implemented independently of the
// package: SHA-256 over previous_hash, the receipt number and the payload's
// SHA-256, newline-separated, in hex.
func hashOf(prev, receipt, payload string) string {
	d := sha256.Sum256([]byte(payload))
	h := sha256.Sum256([]byte(prev + "\n" + receipt + "\n" + hex.EncodeToString(d[:])))
	return hex.EncodeToString(h[:])
}

type storedEvent struct {
	idx                                int64
	receipt, kind, payload, prev, hash string
	at                                 int64
}

func (e *env) events() []storedEvent {
	e.t.Helper()
	rows, err := e.db.QueryContext(ctx, `SELECT idx, receipt_number, kind, payload, previous_hash, hash, at FROM events ORDER BY idx`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []storedEvent
	for rows.Next() {
		var ev storedEvent
		if err := rows.Scan(&ev.idx, &ev.receipt, &ev.kind, &ev.payload, &ev.prev, &ev.hash, &ev.at); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func (e *env) exec(query string, args ...any) {
	e.t.Helper()
	if _, err := e.db.ExecContext(ctx, query, args...); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
}

func (e *env) proof(number string) *receiptsv1.VerifyReceiptResponse {
	e.t.Helper()
	resp, err := e.alpha.VerifyReceipt(ctx, &receiptsv1.VerifyReceiptRequest{ReceiptNumber: number})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

func TestVerifiableHistory(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.issue(cotton("V-1", "5", "5", "5", "5"))
		other := cotton("V-2")
		other.HolderParticipantId = listing.DemoMemberB
		e.issue(other)
		if _, err := e.alpha.PledgeReceipt(ctx, pledgeReq("V-1", listing.DemoBank)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.beta.PledgeReceipt(ctx, pledgeReq("V-2", "BANK-TWO")); err != nil {
			t.Fatal(err)
		}
		if _, err := e.bank.ReleasePledge(ctx, &receiptsv1.ReleasePledgeRequest{ReceiptNumber: "V-1"}); err != nil {
			t.Fatal(err)
		}
		e.deposit(e.alpha, "V-1")
		e.trade(1, "5", "V-1", "5")
		waitFor(t, "the buyer's credit", func() bool { return e.pending("V-1.1") == "" })

		// Every stored hash is the documented function of its predecessor.
		all := e.events()
		prev := strings.Repeat("0", 64)
		for _, ev := range all {
			if ev.prev != prev || ev.hash != hashOf(ev.prev, ev.receipt, ev.payload) {
				t.Fatalf("event %d does not follow the documented chain format", ev.idx)
			}
			prev = ev.hash
		}
		trusted := e.root()
		if trusted.Hash != prev || trusted.Index != int64(len(all)) {
			t.Fatalf("root %v, chain ends at %d:%s", trusted, len(all), prev)
		}

		resp := e.proof("V-1")
		if err := receipts.VerifyProof(resp, trusted.Hash); err != nil {
			t.Fatalf("honest proof: %v", err)
		}
		if err := receipts.VerifyProof(resp, "7:"+trusted.Hash); err == nil {
			t.Fatal("accepted a root at the wrong index")
		}
		if kinds(resp.Events) != "issued,pledged,pledge_released,deposited,delivered_part" {
			t.Fatalf("events %s", kinds(resp.Events))
		}
		// The proof shows nothing of other receipts but their numbers.
		for _, c := range resp.Chain {
			if c.ReceiptNumber != "V-1" && (!strings.HasPrefix(c.Payload, "sha256:") || c.Kind != "") {
				t.Fatalf("another receipt's event is not redacted: %v", c)
			}
		}
		if b, _ := protojson.Marshal(resp); bytes.Contains(b, []byte("BANK-TWO")) || bytes.Contains(b, []byte("V-2-B1")) {
			t.Fatalf("the proof leaks another receipt's pledge: %s", b)
		}

		// The offline verifier, as `bcx receipts verify FILE --root HASH`.
		b, err := protojson.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "proof.json")
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := receipts.VerifyMain([]string{file, "--root", trusted.Hash}, nil, &out); err != nil || !strings.HasPrefix(out.String(), "OK: receipt V-1") {
			t.Fatalf("verify: %v, %q", err, out.String())
		}
		out.Reset()
		if err := receipts.VerifyMain([]string{"-", "--root=" + trusted.Hash}, bytes.NewReader(b), &out); err != nil {
			t.Fatalf("verify from stdin: %v", err)
		}
		if err := receipts.VerifyMain([]string{file, "--root", strings.Repeat("ab", 32)}, nil, &out); err == nil {
			t.Fatal("verified against a root that is not the registry's")
		}
		if err := receipts.VerifyMain([]string{file}, nil, &out); err == nil {
			t.Fatal("verified without a root")
		}

		// Altered in transit: each change is caught.
		for name, alter := range map[string]func(r *receiptsv1.VerifyReceiptResponse){
			"holder":        func(r *receiptsv1.VerifyReceiptResponse) { r.Receipt.HolderParticipantId = listing.DemoMemberB },
			"weight":        func(r *receiptsv1.VerifyReceiptResponse) { r.Receipt.NetWeight = "20" },
			"a piece":       func(r *receiptsv1.VerifyReceiptResponse) { r.Receipt.Pieces[0].NetWeight = "5.5" },
			"event dropped": func(r *receiptsv1.VerifyReceiptResponse) { r.Events = append(r.Events[:1], r.Events[2:]...) },
			"event payload": func(r *receiptsv1.VerifyReceiptResponse) {
				r.Events[1].Payload = strings.Replace(r.Events[1].Payload, "LOAN", "LAON", 1)
			},
			"events swapped": func(r *receiptsv1.VerifyReceiptResponse) { r.Events[1], r.Events[2] = r.Events[2], r.Events[1] },
			"own event redacted": func(r *receiptsv1.VerifyReceiptResponse) {
				d := sha256.Sum256([]byte(r.Events[1].Payload))
				r.Events[1].Payload = "sha256:" + hex.EncodeToString(d[:])
			},
			"chain entry cut": func(r *receiptsv1.VerifyReceiptResponse) { r.Chain = append(r.Chain[:2], r.Chain[3:]...) },
			"kind":            func(r *receiptsv1.VerifyReceiptResponse) { r.Events[2].Kind = "pledged" },
			"head hash":       func(r *receiptsv1.VerifyReceiptResponse) { r.Receipt.HeadHash = r.Events[0].Hash },
		} {
			bad := proto.Clone(resp).(*receiptsv1.VerifyReceiptResponse)
			alter(bad)
			if err := receipts.VerifyProof(bad, trusted.Hash); err == nil {
				t.Errorf("%s: altered proof verified", name)
			}
		}

		// Altered in the database: every stored change is caught by a fresh proof.
		mine := func() []storedEvent {
			var out []storedEvent
			for _, ev := range e.events() {
				if ev.receipt == "V-1" {
					out = append(out, ev)
				}
			}
			return out
		}
		v1 := mine()
		pledged := v1[1]
		var foreign storedEvent
		for _, ev := range all {
			if ev.receipt == "V-2" && ev.idx > v1[0].idx {
				foreign = ev
			}
		}
		for _, tc := range []struct {
			name           string
			tamper, repair func()
		}{
			{"payload of the receipt's event",
				func() {
					e.exec(`UPDATE events SET payload = $1 WHERE idx = $2`, strings.Replace(pledged.payload, "LOAN-V-1", "LOAN-V-9", 1), pledged.idx)
				},
				func() { e.exec(`UPDATE events SET payload = $1 WHERE idx = $2`, pledged.payload, pledged.idx) }},
			{"payload of another receipt's event in the proof",
				func() {
					e.exec(`UPDATE events SET payload = $1 WHERE idx = $2`, strings.Replace(foreign.payload, "BANK-TWO", "BANK-QDCB", 1), foreign.idx)
				},
				func() { e.exec(`UPDATE events SET payload = $1 WHERE idx = $2`, foreign.payload, foreign.idx) }},
			{"order of two events",
				func() {
					a, b := v1[1], v1[2]
					e.exec(`UPDATE events SET kind = $1, payload = $2 WHERE idx = $3`, b.kind, b.payload, a.idx)
					e.exec(`UPDATE events SET kind = $1, payload = $2 WHERE idx = $3`, a.kind, a.payload, b.idx)
				},
				func() {
					for _, ev := range v1[1:3] {
						e.exec(`UPDATE events SET kind = $1, payload = $2 WHERE idx = $3`, ev.kind, ev.payload, ev.idx)
					}
				}},
			{"a deleted event",
				func() { e.exec(`DELETE FROM events WHERE idx = $1`, pledged.idx) },
				func() {
					e.exec(`INSERT INTO events (idx, receipt_number, kind, payload, previous_hash, hash, at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
						pledged.idx, pledged.receipt, pledged.kind, pledged.payload, pledged.prev, pledged.hash, pledged.at)
				}},
			{"a rewritten history with every later hash recomputed",
				func() {
					prev := ""
					for _, ev := range all {
						if ev.idx < pledged.idx {
							prev = ev.hash
							continue
						}
						payload := ev.payload
						if ev.idx == pledged.idx {
							payload = strings.Replace(payload, "LOAN-V-1", "LOAN-V-9", 1)
						}
						h := hashOf(prev, ev.receipt, payload)
						e.exec(`UPDATE events SET payload = $1, previous_hash = $2, hash = $3 WHERE idx = $4`, payload, prev, h, ev.idx)
						prev = h
					}
					e.exec(`UPDATE chain_head SET hash = $1 WHERE id = 1`, prev)
				},
				func() {
					for _, ev := range all {
						e.exec(`UPDATE events SET payload = $1, previous_hash = $2, hash = $3 WHERE idx = $4`, ev.payload, ev.prev, ev.hash, ev.idx)
					}
					e.exec(`UPDATE chain_head SET hash = $1 WHERE id = 1`, trusted.Hash)
				}},
		} {
			tc.tamper()
			got, err := e.alpha.VerifyReceipt(ctx, &receiptsv1.VerifyReceiptRequest{ReceiptNumber: "V-1"})
			if err == nil {
				if verr := receipts.VerifyProof(got, trusted.Hash); verr == nil {
					t.Errorf("%s: the proof still verifies against the published root", tc.name)
				}
				if tc.name == "a rewritten history with every later hash recomputed" {
					// Consistent in itself: only the published root exposes it.
					if verr := receipts.VerifyProof(got, got.Root.Hash); verr != nil {
						t.Errorf("rewritten chain should be self-consistent: %v", verr)
					}
				}
			}
			tc.repair()
			if err := receipts.VerifyProof(e.proof("V-1"), trusted.Hash); err != nil {
				t.Fatalf("after repairing %q: %v", tc.name, err)
			}
		}
		// The buyer's receipt carries its own verifiable history.
		bp, err := e.beta.VerifyReceipt(ctx, &receiptsv1.VerifyReceiptRequest{ReceiptNumber: "V-1.1"})
		if err != nil {
			t.Fatal(err)
		}
		if err := receipts.VerifyProof(bp, trusted.Hash); err != nil || kinds(bp.Events) != "delivered_from" {
			t.Fatalf("buyer's proof: %v %s", err, kinds(bp.Events))
		}
	})
}
