package ledger_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/bcx-exchange/bcx/pkg/sqlstore"
	"github.com/bcx-exchange/bcx/pkg/sqlstore/sqlstoretest"
	"github.com/bcx-exchange/bcx/services/settlement/ledger"
)

func TestValidate(t *testing.T) {
	at := time.Unix(1, 0)
	a, b := ledger.Available("M-A", "CNY"), ledger.BankAccount("BANK-1", "CNY")
	usd := ledger.Available("M-A", "USD")
	for _, tc := range []struct {
		name string
		txn  ledger.Transaction
		want error
	}{
		{"balanced", ledger.Transaction{Kind: "deposit", Reference: "r", BookedAt: at,
			Postings: []ledger.Posting{{a, 100, "deposit"}, {b, -100, "deposit"}}}, nil},
		{"unbalanced", ledger.Transaction{Kind: "deposit", Reference: "r",
			Postings: []ledger.Posting{{a, 100, "deposit"}, {b, -99, "deposit"}}}, ledger.ErrUnbalanced},
		{"balanced in total but not per currency", ledger.Transaction{Kind: "fx", Reference: "r",
			Postings: []ledger.Posting{{a, 100, "fx"}, {usd, -100, "fx"}}}, ledger.ErrUnbalanced},
		{"one posting", ledger.Transaction{Kind: "x", Reference: "r", Postings: []ledger.Posting{{a, 0, "x"}}}, ledger.ErrBadTransaction},
		{"zero amount", ledger.Transaction{Kind: "x", Reference: "r",
			Postings: []ledger.Posting{{a, 0, "x"}, {b, 0, "x"}}}, ledger.ErrBadTransaction},
		{"no reference", ledger.Transaction{Kind: "x", Postings: []ledger.Posting{{a, 1, "x"}, {b, -1, "x"}}}, ledger.ErrBadTransaction},
		{"forged account", ledger.Transaction{Kind: "x", Reference: "r", Postings: []ledger.Posting{
			{ledger.Account{Name: "member:M-A:available:CNY", Kind: ledger.MemberAvailable, Owner: "M-B", Currency: "CNY"}, 1, "x"}, {b, -1, "x"}}}, ledger.ErrBadAccount},
		{"forged bank account", ledger.Transaction{Kind: "x", Reference: "r", Postings: []ledger.Posting{
			{ledger.Account{Name: "bank:B:settlement:USD", Kind: ledger.BankSettlement, Owner: ledger.ExchangeOwner, Currency: "CNY"}, 1, "x"}, {b, -1, "x"}}}, ledger.ErrBadAccount},
		{"forged kind", ledger.Transaction{Kind: "x", Reference: "r", Postings: []ledger.Posting{
			{ledger.Account{Name: "member:M-A:available:CNY", Kind: ledger.MemberReserved, Owner: "M-A", Currency: "CNY"}, 1, "x"}, {b, -1, "x"}}}, ledger.ErrBadAccount},
		{"overflow", ledger.Transaction{Kind: "x", Reference: "r", Postings: []ledger.Posting{
			{a, 1 << 62, "x"}, {a, 1 << 62, "x"}, {b, -(1 << 62), "x"}, {b, -(1 << 62), "x"}}}, ledger.ErrOverflow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.txn.Validate()
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Validate() = %v, want %v", err, tc.want)
			}
		})
	}
	for _, name := range []string{"member:M-A:available:CNY", "member:M-A:pending_settlement:USD", "exchange:fee_income:CNY",
		"exchange:fx_position:USD", "bank:BANK-QDCB:settlement:CNY"} {
		acc, err := ledger.ParseAccount(name)
		if err != nil || acc.Name != name {
			t.Errorf("ParseAccount(%q) = %+v, %v", name, acc, err)
		}
	}
	for _, bad := range []string{"", "member:M-A:cash:CNY", "member::available:CNY", "bank:B:settlement", "exchange:fee_income:"} {
		if _, err := ledger.ParseAccount(bad); err == nil {
			t.Errorf("ParseAccount(%q) accepted", bad)
		}
	}
}

// model is the reference the property test compares the SQL ledger with: a
// map of balances and the list of committed transactions.
type model struct {
	bal  map[string]int64
	txns []*ledger.Transaction
	refs map[string]bool
}

func (m *model) clone() *model {
	c := &model{bal: map[string]int64{}, txns: append([]*ledger.Transaction(nil), m.txns...), refs: map[string]bool{}}
	for k, v := range m.bal {
		c.bal[k] = v
	}
	for k := range m.refs {
		c.refs[k] = true
	}
	return c
}

// apply books t in the model and says whether the real ledger must accept it.
func (m *model) apply(t *ledger.Transaction) bool {
	if t.Validate() != nil || m.refs[t.Kind+"/"+t.Reference] {
		return false
	}
	for _, p := range t.Postings {
		m.bal[p.Account.Name] += p.AmountMinor
	}
	for _, n := range t.NonNegative {
		a, _ := ledger.ParseAccount(n)
		if m.bal[n]*a.Kind.NormalSign() < 0 {
			return false
		}
	}
	m.refs[t.Kind+"/"+t.Reference] = true
	m.txns = append(m.txns, t)
	return true
}

// TestLedgerProperty runs thousands of random operations — deposits,
// withdrawal reservations (some refused for lack of funds), confirmations,
// trades on both cycles, netting, FX conversions, corrections, duplicates
// and deliberately unbalanced transactions — in random groups per database
// transaction, against the SQL ledger and the model, and after every group
// compares every balance and proves the whole ledger with Check.
func TestLedgerProperty(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("LEDGER_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	ops := 3000
	if testing.Short() {
		ops = 600
	}
	for _, b := range sqlstoretest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			t.Logf("seed %d (LEDGER_SEED=%d to repeat)", seed, seed)
			ctx := context.Background()
			db := b.Open(t)
			l, err := ledger.Open(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			runProperty(t, ctx, db, l, rand.New(rand.NewPCG(seed, 1)), ops)
		})
	}
}

func runProperty(t *testing.T, ctx context.Context, db *sqlstore.DB, l *ledger.Ledger, rng *rand.Rand, ops int) {
	members := []string{"M-A", "M-B", "M-C"}
	banks := []string{"BANK-1", "BANK-2"}
	ccys := []string{"CNY", "USD", "JPY"}
	m := &model{bal: map[string]int64{}, refs: map[string]bool{}}
	at := time.Unix(1_700_000_000, 0)
	n, accepted, refused, groups := 0, 0, 0, 0
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	amount := func() int64 { return 1 + rng.Int64N(1_000_000) }
	for n < ops {
		size := 1 + rng.IntN(8)
		work := m.clone()
		var group []*ledger.Transaction
		ok := true
		for i := 0; i < size && n < ops; i++ {
			n++
			at = at.Add(time.Second)
			ref := fmt.Sprintf("op-%d", n)
			mem, ccy, bank := pick(members), pick(ccys), pick(banks)
			txn := &ledger.Transaction{Reference: ref, BookedAt: at}
			switch op := rng.IntN(100); {
			case op < 25: // deposit
				txn.Kind = ledger.KindDeposit
				txn.Move(ledger.BankAccount(bank, ccy), ledger.Available(mem, ccy), amount(), ledger.KindDeposit)
			case op < 40: // reserve for a withdrawal: refused when short of funds
				txn.Kind = ledger.KindWithdrawal
				avail := work.bal[ledger.Available(mem, ccy).Name]
				amt := amount()
				if avail > 0 && rng.IntN(3) > 0 {
					amt = 1 + rng.Int64N(avail)
				}
				txn.Move(ledger.Available(mem, ccy), ledger.Reserved(mem, ccy), amt, ledger.KindWithdrawal)
				txn.NonNegative = []string{ledger.Available(mem, ccy).Name}
			case op < 48: // confirm (money leaves) or release a reservation
				txn.Kind = ledger.KindWithdrawal
				res := work.bal[ledger.Reserved(mem, ccy).Name]
				if res <= 0 {
					continue
				}
				amt := 1 + rng.Int64N(res)
				if rng.IntN(2) == 0 {
					txn.Move(ledger.Reserved(mem, ccy), ledger.BankAccount(bank, ccy), amt, ledger.KindWithdrawal)
				} else {
					txn.Move(ledger.Reserved(mem, ccy), ledger.Available(mem, ccy), amt, ledger.KindWithdrawal)
				}
			case op < 70: // a trade, gross (T+0) or into pending (T+1)
				txn.Kind = ledger.KindTrade
				buyer, seller := pick(members), pick(members)
				p, bf, sf := amount(), rng.Int64N(1000), rng.Int64N(1000)
				kind := ledger.Available
				if rng.IntN(2) == 0 {
					kind = ledger.Pending
				}
				txn.Add(kind(buyer, ccy), -p, ledger.KindTrade)
				txn.Add(kind(buyer, ccy), -bf, ledger.KindFee)
				txn.Add(kind(seller, ccy), p, ledger.KindTrade)
				txn.Add(kind(seller, ccy), -sf, ledger.KindFee)
				txn.Add(ledger.FeeIncomeAccount(ccy), bf+sf, ledger.KindFee)
			case op < 78: // net a member's pending into available
				txn.Kind = ledger.KindSettlement
				pend := work.bal[ledger.Pending(mem, ccy).Name]
				if pend == 0 {
					continue
				}
				txn.Move(ledger.Pending(mem, ccy), ledger.Available(mem, ccy), pend, ledger.KindSettlement)
			case op < 86: // FX conversion through the exchange's positions
				txn.Kind = ledger.KindFX
				to := pick(ccys)
				if to == ccy {
					continue
				}
				a, b := amount(), amount()
				txn.Move(ledger.Available(mem, ccy), ledger.FXAccount(ccy), a, ledger.KindFX)
				txn.Move(ledger.FXAccount(to), ledger.Available(mem, to), b, ledger.KindFX)
			case op < 93: // correct a committed transaction
				if len(work.txns) == 0 {
					continue
				}
				orig := work.txns[rng.IntN(len(work.txns))]
				if orig.Kind == ledger.KindCorrection {
					continue
				}
				txn = orig.Reverse("corr-"+ref, at)
			case op < 96: // a duplicate of a committed transaction
				if len(work.txns) == 0 {
					continue
				}
				orig := work.txns[rng.IntN(len(work.txns))]
				dup := *orig
				dup.NonNegative = nil
				txn = &dup
			default: // unbalanced: must be refused
				txn.Kind = ledger.KindTrade
				txn.Add(ledger.Available(mem, ccy), amount(), ledger.KindTrade)
				txn.Add(ledger.FeeIncomeAccount(ccy), -1, ledger.KindFee)
			}
			group = append(group, txn)
			if !work.apply(txn) {
				ok = false
			}
		}
		if len(group) == 0 {
			continue
		}
		err := db.InTx(ctx, func(q *sql.Tx) error {
			for _, txn := range group {
				if err := l.Post(ctx, q, txn); err != nil {
					return err
				}
			}
			return nil
		})
		switch {
		case ok && err != nil:
			t.Fatalf("after %d ops: group of %d refused, model accepts it: %v", n, len(group), err)
		case !ok && err == nil:
			t.Fatalf("after %d ops: group of %d accepted, model refuses it", n, len(group))
		case !ok && !errors.Is(err, ledger.ErrNegativeBalance) && !errors.Is(err, ledger.ErrDuplicate) &&
			!errors.Is(err, ledger.ErrUnbalanced) && !errors.Is(err, ledger.ErrBadTransaction):
			t.Fatalf("after %d ops: unexpected error %v", n, err)
		}
		if ok {
			m = work
			accepted += len(group)
		} else {
			refused += len(group)
		}
		groups++
		compare(t, ctx, db, l, m, n, groups%25 == 0)
	}
	compare(t, ctx, db, l, m, n, true)
	t.Logf("%d operations: %d committed, %d in refused groups, %d transactions", n, accepted, refused, len(m.txns))
	if accepted < ops/3 || refused == 0 {
		t.Fatalf("the random mix is lopsided: %d committed, %d refused", accepted, refused)
	}
}

func compare(t *testing.T, ctx context.Context, db *sqlstore.DB, l *ledger.Ledger, m *model, n int, full bool) {
	t.Helper()
	got := map[string]int64{}
	rows, err := db.QueryContext(ctx, `SELECT account, balance_minor FROM ledger_accounts`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a string
		var b int64
		if err := rows.Scan(&a, &b); err != nil {
			t.Fatal(err)
		}
		got[a] = b
	}
	rows.Close()
	for a, want := range m.bal {
		if got[a] != want {
			t.Fatalf("after %d ops: %s = %d, model says %d", n, a, got[a], want)
		}
	}
	for a, g := range got {
		if _, ok := m.bal[a]; !ok && g != 0 {
			t.Fatalf("after %d ops: %s = %d, unknown to the model", n, a, g)
		}
	}
	if !full {
		return
	}
	deb, cred := map[string]*big.Int{}, map[string]*big.Int{}
	for _, txn := range m.txns {
		for _, p := range txn.Postings {
			c := p.Account.Currency
			if deb[c] == nil {
				deb[c], cred[c] = new(big.Int), new(big.Int)
			}
			if p.AmountMinor < 0 {
				deb[c].Sub(deb[c], big.NewInt(p.AmountMinor))
			} else {
				cred[c].Add(cred[c], big.NewInt(p.AmountMinor))
			}
		}
	}
	var res *ledger.CheckResult
	if err := db.InTx(ctx, func(q *sql.Tx) (err error) { res, err = l.Check(ctx, q); return err }); err != nil {
		t.Fatal(err)
	}
	if !res.Balanced() || res.Transactions != int64(len(m.txns)) {
		t.Fatalf("after %d ops: Check = %+v, want balanced with %d transactions", n, res, len(m.txns))
	}
	for _, tot := range res.Totals {
		if tot.Debits.Cmp(deb[tot.Currency]) != 0 || tot.Credits.Cmp(cred[tot.Currency]) != 0 {
			t.Fatalf("after %d ops: %s debits %s credits %s, model %s/%s", n, tot.Currency, tot.Debits, tot.Credits, deb[tot.Currency], cred[tot.Currency])
		}
	}
}

// TestCheckFindsCorruption proves Check is not a tautology: a posting
// written behind the ledger's back is found.
func TestCheckFindsCorruption(t *testing.T) {
	for _, b := range sqlstoretest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := b.Open(t)
			l, err := ledger.Open(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			txn := &ledger.Transaction{Kind: ledger.KindDeposit, Reference: "d1", BookedAt: time.Unix(5, 0)}
			txn.Move(ledger.BankAccount("B", "CNY"), ledger.Available("M", "CNY"), 500, ledger.KindDeposit)
			if err := db.InTx(ctx, func(q *sql.Tx) error { return l.Post(ctx, q, txn) }); err != nil {
				t.Fatal(err)
			}
			check := func() *ledger.CheckResult {
				var r *ledger.CheckResult
				if err := db.InTx(ctx, func(q *sql.Tx) (err error) { r, err = l.Check(ctx, q); return err }); err != nil {
					t.Fatal(err)
				}
				return r
			}
			if r := check(); !r.Balanced() || r.Transactions != 1 {
				t.Fatalf("clean ledger: %+v", r)
			}
			if _, err := db.ExecContext(ctx, `INSERT INTO ledger_postings (posting_id, transaction_id, account, owner, currency, amount_minor, kind, booked_at)
				VALUES (99, $1, 'member:M:available:CNY', 'M', 'CNY', 7, 'deposit', 5)`, txn.ID); err != nil {
				t.Fatal(err)
			}
			r := check()
			if r.Balanced() || r.UnbalancedTransactions != 1 || r.BalanceMismatches != 1 || r.Totals[0].Balanced() {
				t.Fatalf("corrupted ledger passed: %+v", r)
			}
		})
	}
}

// TestPostRechecksInSQL: a duplicate reference is refused by the database
// even when the caller did not look first.
func TestPostDuplicate(t *testing.T) {
	ctx := context.Background()
	db := sqlstoretest.OpenSQLite(t)
	l, err := ledger.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	mk := func() *ledger.Transaction {
		txn := &ledger.Transaction{Kind: ledger.KindDeposit, Reference: "BANK/REF1", BookedAt: time.Unix(5, 0)}
		txn.Move(ledger.BankAccount("BANK", "CNY"), ledger.Available("M", "CNY"), 100, ledger.KindDeposit)
		return txn
	}
	if err := db.InTx(ctx, func(q *sql.Tx) error { return l.Post(ctx, q, mk()) }); err != nil {
		t.Fatal(err)
	}
	err = db.InTx(ctx, func(q *sql.Tx) error { return l.Post(ctx, q, mk()) })
	if !errors.Is(err, ledger.ErrDuplicate) {
		t.Fatalf("second post: %v, want ErrDuplicate", err)
	}
	// Ids survive a restart.
	l2, err := ledger.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	txn := mk()
	txn.Reference = "BANK/REF2"
	if err := db.InTx(ctx, func(q *sql.Tx) error { return l2.Post(ctx, q, txn) }); err != nil || txn.ID != 2 {
		t.Fatalf("post after reopen: id %d, %v", txn.ID, err)
	}
}
