package bankstatement

import (
	"fmt"
	"strings"

	"github.com/shopspring/decimal"
)

// CheckStatus is the outcome of a statement's balance check. The strings are
// the ones inspect prints.
type CheckStatus string

// Balance check outcomes.
const (
	// Consistent: opening + credits - debits == closing, all in the
	// statement currency.
	Consistent CheckStatus = "consistent"
	// Inconsistent: the statement does not add up (or mixes currencies);
	// Difference and Reason say how.
	Inconsistent CheckStatus = "inconsistent"
	// Unchecked: the statement lacks an opening or closing booked balance,
	// as every camt.054 notification does.
	Unchecked CheckStatus = "unchecked"
)

// BalanceCheck is the arithmetic behind a CheckStatus, for a reconciliation
// report.
type BalanceCheck struct {
	Status CheckStatus
	// Credits and Debits are the sums of the booked entries (both >= 0),
	// CreditCount and DebitCount their numbers.
	Credits, Debits         decimal.Decimal
	CreditCount, DebitCount int
	// Expected is opening + Credits - Debits; Difference is closing -
	// Expected (zero when consistent). Both are zero when unchecked.
	Expected, Difference decimal.Decimal
	// Reason explains an inconsistent or unchecked result in words.
	Reason string
}

// CheckBalance verifies that the opening booked balance plus the booked
// credits minus the booked debits equals the closing booked balance. Only
// booked entries count because pending and informational entries (camt Sts
// PDNG/INFO) do not move the booked balance. An entry or balance in another
// currency than the statement makes it inconsistent: such amounts cannot be
// added.
func (s *Statement) CheckBalance() BalanceCheck {
	var c BalanceCheck
	for _, e := range s.Entries {
		if !e.Booked() {
			continue
		}
		if e.Direction == Debit {
			c.Debits = c.Debits.Add(e.Amount)
			c.DebitCount++
		} else {
			c.Credits = c.Credits.Add(e.Amount)
			c.CreditCount++
		}
	}
	switch {
	case s.OpeningBalance == nil && s.ClosingBalance == nil:
		c.Status, c.Reason = Unchecked, "statement has no opening or closing booked balance"
		return c
	case s.OpeningBalance == nil:
		c.Status, c.Reason = Unchecked, "statement has no opening booked balance"
		return c
	case s.ClosingBalance == nil:
		c.Status, c.Reason = Unchecked, "statement has no closing booked balance"
		return c
	}
	open, closing := s.OpeningBalance, s.ClosingBalance
	c.Expected = open.Amount.Add(c.Credits).Sub(c.Debits)
	c.Difference = closing.Amount.Sub(c.Expected)

	var problems []string
	if open.Currency != s.Currency {
		problems = append(problems, fmt.Sprintf("opening balance is in %s, the statement in %s", open.Currency, s.Currency))
	}
	if closing.Currency != s.Currency {
		problems = append(problems, fmt.Sprintf("closing balance is in %s, the statement in %s", closing.Currency, s.Currency))
	}
	foreign := 0
	for _, e := range s.Entries {
		if e.Booked() && e.Currency != s.Currency {
			if foreign == 0 {
				problems = append(problems, fmt.Sprintf("entry at line %d is in %s, the statement in %s", e.Line, e.Currency, s.Currency))
			}
			foreign++
		}
	}
	if foreign > 1 {
		problems = append(problems, fmt.Sprintf("%d entries in all are not in %s", foreign, s.Currency))
	}
	if !c.Difference.IsZero() {
		problems = append(problems, fmt.Sprintf("opening %s + credits %s - debits %s = %s, but the closing balance is %s (difference %s)",
			FormatAmount(open.Amount), FormatAmount(c.Credits), FormatAmount(c.Debits),
			FormatAmount(c.Expected), FormatAmount(closing.Amount), FormatAmount(c.Difference)))
	}
	if len(problems) == 0 {
		c.Status = Consistent
		return c
	}
	c.Status = Inconsistent
	c.Reason = strings.Join(problems, "; ")
	return c
}
