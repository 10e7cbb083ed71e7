package bankstatement

import (
	"bytes"
	"testing"

	"github.com/shopspring/decimal"
)

func TestGenerateCamt053RoundTrip(t *testing.T) {
	var hooked []Entry
	var buf bytes.Buffer
	if err := GenerateCamt053(&buf, 1000, 42, WithEntryHook(func(e Entry) { hooked = append(hooked, e) })); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatalf("generated statement does not parse: %v", err)
	}
	if f.Format != FormatCamt053 || f.Version != "001.08" || len(f.Statements) != 1 {
		t.Fatalf("got format %s version %s with %d statements", f.Format, f.Version, len(f.Statements))
	}
	st := f.Statements[0]
	if st.Check.Status != Consistent {
		t.Fatalf("generated statement is %s: %s", st.Check.Status, st.Check.Reason)
	}
	if st.Currency != "CNY" || st.Account != "CN7710290000012345678901" || st.AccountServicer != "BKCHCNBJXXX" {
		t.Errorf("statement header: currency %q account %q servicer %q", st.Currency, st.Account, st.AccountServicer)
	}
	if len(st.Entries) != 1000 || len(hooked) != 1000 {
		t.Fatalf("got %d entries, hook saw %d; want 1000", len(st.Entries), len(hooked))
	}
	seenE2E := map[string]bool{}
	seenRef := map[string]bool{}
	sum := st.OpeningBalance.Amount
	for i, e := range st.Entries {
		h := hooked[i]
		if !e.Amount.Equal(h.Amount) || e.Direction != h.Direction || e.EndToEndID != h.EndToEndID ||
			e.BankReference != h.BankReference || e.BookingDate != h.BookingDate || e.ValueDate != h.ValueDate ||
			e.Currency != "CNY" {
			t.Fatalf("entry %d: parsed %+v, generated %+v", i, e, h)
		}
		if seenE2E[e.EndToEndID] || seenRef[e.BankReference] {
			t.Fatalf("entry %d: duplicate reference %q / %q", i, e.EndToEndID, e.BankReference)
		}
		seenE2E[e.EndToEndID], seenRef[e.BankReference] = true, true
		if _, err := e.AmountMinor(2); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		sum = sum.Add(e.SignedAmount())
	}
	if !sum.Equal(st.ClosingBalance.Amount) {
		t.Errorf("opening + entries = %s, closing %s", sum, st.ClosingBalance.Amount)
	}

	// Same seed, same bytes; another seed, other bytes.
	var again, other bytes.Buffer
	_ = GenerateCamt053(&again, 1000, 42)
	_ = GenerateCamt053(&other, 1000, 43)
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("generator is not deterministic")
	}
	if bytes.Equal(buf.Bytes(), other.Bytes()) {
		t.Error("seed has no effect")
	}
}

func TestGenerateCamt053Options(t *testing.T) {
	var buf bytes.Buffer
	err := GenerateCamt053(&buf, 50, 7, WithCurrency("USD"), WithAccount("US-ACCT-1"),
		WithOpeningBalanceMinor(-500), WithMaxAmountMinor(100), WithStatementDate(Date{2025, 12, 31}))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	st := f.Statements[0]
	if st.Currency != "USD" || st.Account != "US-ACCT-1" || !st.OpeningBalance.Amount.Equal(decimal.RequireFromString("-5")) ||
		st.Check.Status != Consistent {
		t.Fatalf("got %s %s opening %s check %s (%s)", st.Currency, st.Account, st.OpeningBalance.Amount, st.Check.Status, st.Check.Reason)
	}
	for _, e := range st.Entries {
		if e.Amount.GreaterThan(decimal.RequireFromString("1.00")) || e.BookingDate != (Date{2025, 12, 31}) {
			t.Fatalf("entry out of range: %+v", e)
		}
		if !e.ValueDate.IsZero() && e.ValueDate != (Date{2025, 12, 31}) && e.ValueDate != (Date{2026, 1, 1}) {
			t.Fatalf("value date %s", e.ValueDate)
		}
	}
	if err := GenerateCamt053(&buf, 1, 1, WithCurrency("usd")); err == nil {
		t.Error("lower-case currency accepted")
	}
}

// BenchmarkParseCamt053_100k measures parsing the statement size the
// reconciliation benchmark uses: 100,000 entries.
func BenchmarkParseCamt053_100k(b *testing.B) {
	var buf bytes.Buffer
	if err := GenerateCamt053(&buf, 100_000, 1); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		f, err := Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		if st := f.Statements[0]; len(st.Entries) != 100_000 || st.Check.Status != Consistent {
			b.Fatalf("got %d entries, %s", len(st.Entries), st.Check.Status)
		}
	}
}

func BenchmarkGenerateCamt053_100k(b *testing.B) {
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := GenerateCamt053(&buf, 100_000, 1); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(buf.Len()))
}
