package bankstatement

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// Compact, exact views of parsed statements for table tests: amounts as the
// strings they print as (so "27.00" and "27" differ), balances "" when
// absent.
type sumEntry struct {
	Amount, Currency  string
	Direction         Direction
	Reversal          bool
	Booking, Value    string
	BankRef, E2E      string
	CustomerRef, Code string
}

type sumStatement struct {
	ID, Account, Currency   string
	Opening, Closing        string
	Check                   CheckStatus
	Difference              string
	Entries                 []sumEntry
	CreditCount, DebitCount int
}

func balanceString(b *Balance) string {
	if b == nil {
		return ""
	}
	return FormatAmount(b.Amount) + " " + b.Currency + " " + b.Date.String()
}

func summarize(st Statement) sumStatement {
	s := sumStatement{
		ID: st.ID, Account: st.Account, Currency: st.Currency,
		Opening: balanceString(st.OpeningBalance), Closing: balanceString(st.ClosingBalance),
		Check: st.Check.Status, CreditCount: st.Check.CreditCount, DebitCount: st.Check.DebitCount,
	}
	if st.Check.Status != Unchecked {
		s.Difference = FormatAmount(st.Check.Difference)
	}
	for _, e := range st.Entries {
		s.Entries = append(s.Entries, sumEntry{
			Amount: FormatAmount(e.Amount), Currency: e.Currency, Direction: e.Direction, Reversal: e.Reversal,
			Booking: e.BookingDate.String(), Value: e.ValueDate.String(),
			BankRef: e.BankReference, E2E: e.EndToEndID, CustomerRef: e.CustomerReference, Code: e.BankTxCode,
		})
	}
	return s
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// wantParseError checks that err is a *ParseError wrapping sentinel whose
// message mentions every fragment.
func wantParseError(t *testing.T, err, sentinel error, fragments ...string) *ParseError {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", sentinel)
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("got %T %v, want a *ParseError", err, err)
	}
	if !errors.Is(err, sentinel) {
		t.Errorf("error %q does not wrap %v", err, sentinel)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not mention %q", err, f)
		}
	}
	return pe
}
