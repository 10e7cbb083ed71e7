// Package ledger is the exchange's ledger of record: double-entry, one ledger
// per currency, amounts as int64 minor units.
//
// # Accounts
//
// Every account holds one currency and is named by what it is:
//
//	member:<id>:available:<CCY>           settled cash a member may use or withdraw
//	member:<id>:reserved:<CCY>            cash earmarked for a withdrawal the bank has not yet confirmed
//	member:<id>:pending_settlement:<CCY>  net of booked trades that settle in a later batch (T+1); signed
//	exchange:fee_income:<CCY>             fees the exchange has earned
//	exchange:fx_position:<CCY>            the exchange's open position from FX conversions it booked
//	bank:<bank id>:settlement:<CCY>       the exchange's settlement account at a clearing bank
//
// # Signs
//
// A posting's amount is signed in the exchange's books: positive is a credit,
// negative a debit. Every transaction's postings sum to zero in each currency
// (debits equal credits), which Validate checks before anything is written
// and Post re-checks in SQL before the caller commits. An account's stored
// balance is the sum of its postings, so member accounts, fee income and FX
// positions (what the exchange owes or has earned: credit-normal) are
// positive when in credit, while the bank settlement accounts (cash the
// exchange holds: debit-normal) are negative when they hold money. The API
// shows every balance and posting from the account holder's side —
// Kind.NormalSign — so a deposit shows as +100.00 on the member's account and
// +100.00 on the exchange's account at the bank, as on the bank's statement.
//
// Postings are never updated or deleted. A correction is a new transaction
// that references the one it corrects (Transaction.Corrects).
package ledger

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Kind is what an account is for. The values equal bcx.settlement.v1.AccountKind.
type Kind int32

// Account kinds.
const (
	MemberAvailable Kind = iota + 1
	MemberReserved
	MemberPending
	FeeIncome
	BankSettlement
	FXPosition
)

var kindNames = map[Kind]string{
	MemberAvailable: "available", MemberReserved: "reserved", MemberPending: "pending_settlement",
	FeeIncome: "fee_income", BankSettlement: "settlement", FXPosition: "fx_position",
}

func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("Kind(%d)", int32(k))
}

// NormalSign is +1 for credit-normal accounts (what the exchange owes its
// members, its income and FX positions) and -1 for debit-normal ones (the
// exchange's cash at banks). Multiplying a stored amount by it gives the
// amount as the account holder sees it.
func (k Kind) NormalSign() int64 {
	if k == BankSettlement {
		return -1
	}
	return 1
}

// ExchangeOwner owns the exchange's own accounts (fee income, FX positions and
// its settlement accounts at banks).
const ExchangeOwner = "exchange"

// Account identifies a ledger account.
type Account struct {
	Name     string
	Kind     Kind
	Owner    string // the member's participant id, or ExchangeOwner
	Currency string
}

// Member returns a member's account of a kind in a currency.
func Member(kind Kind, member, currency string) Account {
	return Account{Name: "member:" + member + ":" + kind.String() + ":" + currency, Kind: kind, Owner: member, Currency: currency}
}

// Available, Reserved and Pending are a member's three accounts per currency.
func Available(member, currency string) Account { return Member(MemberAvailable, member, currency) }
func Reserved(member, currency string) Account  { return Member(MemberReserved, member, currency) }
func Pending(member, currency string) Account   { return Member(MemberPending, member, currency) }

// FeeIncomeAccount is the exchange's fee income in a currency.
func FeeIncomeAccount(currency string) Account {
	return Account{Name: "exchange:fee_income:" + currency, Kind: FeeIncome, Owner: ExchangeOwner, Currency: currency}
}

// FXAccount is the exchange's FX position in a currency.
func FXAccount(currency string) Account {
	return Account{Name: "exchange:fx_position:" + currency, Kind: FXPosition, Owner: ExchangeOwner, Currency: currency}
}

// BankAccount is the exchange's settlement account at a clearing bank.
func BankAccount(bank, currency string) Account {
	return Account{Name: "bank:" + bank + ":settlement:" + currency, Kind: BankSettlement, Owner: ExchangeOwner, Currency: currency}
}

// consistent reports whether an account's name is the one its fields make:
// an Account built by hand with a name that says something else is refused.
// It compares piece by piece, without building the expected name.
func (a Account) consistent() bool {
	if a.Currency == "" || strings.Contains(a.Currency, ":") || strings.Contains(a.Owner, ":") {
		return false
	}
	n := a.Name
	eat := func(p string) bool {
		if !strings.HasPrefix(n, p) {
			return false
		}
		n = n[len(p):]
		return true
	}
	switch a.Kind {
	case MemberAvailable, MemberReserved, MemberPending:
		return a.Owner != "" && eat("member:") && eat(a.Owner) && eat(":") && eat(kindNames[a.Kind]) && eat(":") && n == a.Currency
	case FeeIncome:
		return a.Owner == ExchangeOwner && eat("exchange:fee_income:") && n == a.Currency
	case FXPosition:
		return a.Owner == ExchangeOwner && eat("exchange:fx_position:") && n == a.Currency
	case BankSettlement:
		if a.Owner != ExchangeOwner || !eat("bank:") {
			return false
		}
		i := strings.IndexByte(n, ':')
		return i > 0 && strings.HasPrefix(n[i:], ":settlement:") && n[i+len(":settlement:"):] == a.Currency
	}
	return false
}

// ParseAccount reads an account name back.
func ParseAccount(name string) (Account, error) {
	parts := strings.Split(name, ":")
	bad := func() error { return fmt.Errorf("%w: %q", ErrBadAccount, name) }
	switch {
	case len(parts) == 4 && parts[0] == "member":
		for k, n := range kindNames {
			if n == parts[2] && (k == MemberAvailable || k == MemberReserved || k == MemberPending) {
				a := Member(k, parts[1], parts[3])
				if a.Name != name || parts[1] == "" || parts[3] == "" {
					return Account{}, bad()
				}
				return a, nil
			}
		}
	case len(parts) == 3 && parts[0] == "exchange" && parts[1] == "fee_income" && parts[2] != "":
		return FeeIncomeAccount(parts[2]), nil
	case len(parts) == 3 && parts[0] == "exchange" && parts[1] == "fx_position" && parts[2] != "":
		return FXAccount(parts[2]), nil
	case len(parts) == 4 && parts[0] == "bank" && parts[2] == "settlement" && parts[1] != "" && parts[3] != "":
		return BankAccount(parts[1], parts[3]), nil
	}
	return Account{}, bad()
}

// Posting kinds: what a movement was for, shown on statements.
const (
	KindDeposit    = "deposit"
	KindWithdrawal = "withdrawal"
	KindTrade      = "trade"
	KindFee        = "fee"
	KindFX         = "fx"
	KindSettlement = "settlement"
	KindAdjustment = "adjustment"
	KindTransfer   = "transfer"
	KindCorrection = "correction"
)

// Posting is one line of a transaction.
type Posting struct {
	Account Account
	// AmountMinor is signed: positive credits the account, negative debits it.
	AmountMinor int64
	// Kind says what the line is for (KindTrade, KindFee, ...).
	Kind string
}

// Transaction is a set of postings that balance in every currency.
type Transaction struct {
	// ID is assigned by Post.
	ID int64
	// Kind is the transaction's main purpose (KindDeposit, KindTrade, ...).
	Kind string
	// Reference is the business key: unique per Kind ("BANK-QDCB/REF123",
	// "trade/42"). Posting the same kind and reference twice fails, which is
	// the ledger's own guard against booking anything twice.
	Reference string
	// Corrects is the transaction a correction reverses or amends, or 0.
	Corrects int64
	BookedAt time.Time
	Postings []Posting
	// NonNegative names accounts that must not be below zero (in the
	// account holder's view) once the transaction is applied; Post fails
	// with ErrNegativeBalance otherwise.
	NonNegative []string
}

// Errors.
var (
	ErrUnbalanced      = errors.New("transaction does not balance")
	ErrBadAccount      = errors.New("malformed account")
	ErrBadTransaction  = errors.New("malformed transaction")
	ErrNegativeBalance = errors.New("balance would become negative")
	ErrOverflow        = errors.New("amount overflows int64")
)

// Add adds a posting (zero amounts are dropped: they move nothing).
func (t *Transaction) Add(a Account, amountMinor int64, kind string) {
	if amountMinor == 0 {
		return
	}
	t.Postings = append(t.Postings, Posting{Account: a, AmountMinor: amountMinor, Kind: kind})
}

// Move credits to and debits from by amountMinor (in the exchange's books).
func (t *Transaction) Move(from, to Account, amountMinor int64, kind string) {
	t.Add(from, -amountMinor, kind)
	t.Add(to, amountMinor, kind)
}

// Validate checks that the transaction is well-formed and balances in every
// currency: the sum of its postings is zero per currency.
func (t *Transaction) Validate() error {
	if t.Kind == "" || t.Reference == "" {
		return fmt.Errorf("%w: kind and reference are required", ErrBadTransaction)
	}
	if len(t.Postings) < 2 {
		return fmt.Errorf("%w: %s %s has %d postings, want at least 2", ErrBadTransaction, t.Kind, t.Reference, len(t.Postings))
	}
	// Per-currency sums; a transaction touches one or two currencies, so a
	// short slice beats a map.
	type sum struct {
		ccy string
		v   int64
	}
	var buf [4]sum
	sums := buf[:0]
	for i, p := range t.Postings {
		if p.AmountMinor == 0 || p.AmountMinor == math.MinInt64 {
			return fmt.Errorf("%w: posting %d of %s %s has amount %d", ErrBadTransaction, i, t.Kind, t.Reference, p.AmountMinor)
		}
		if p.Kind == "" {
			return fmt.Errorf("%w: posting %d of %s %s has no kind", ErrBadTransaction, i, t.Kind, t.Reference)
		}
		a := p.Account
		if !a.consistent() {
			return fmt.Errorf("%w: %q does not match its fields %+v", ErrBadAccount, a.Name, a)
		}
		j := 0
		for j < len(sums) && sums[j].ccy != a.Currency {
			j++
		}
		if j == len(sums) {
			sums = append(sums, sum{ccy: a.Currency})
		}
		v, ok := addChecked(sums[j].v, p.AmountMinor)
		if !ok {
			return fmt.Errorf("%w: %s %s in %s", ErrOverflow, t.Kind, t.Reference, a.Currency)
		}
		sums[j].v = v
	}
	for _, s := range sums {
		if s.v != 0 {
			return fmt.Errorf("%w: %s %s: %s postings sum to %d, not 0", ErrUnbalanced, t.Kind, t.Reference, s.ccy, s.v)
		}
	}
	return nil
}

// Currencies lists the currencies a transaction touches, sorted.
func (t *Transaction) Currencies() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range t.Postings {
		if !seen[p.Account.Currency] {
			seen[p.Account.Currency] = true
			out = append(out, p.Account.Currency)
		}
	}
	sort.Strings(out)
	return out
}

// Reverse returns a correction that undoes t: the same postings negated,
// referencing t. t must have been posted (have an ID).
func (t *Transaction) Reverse(reference string, at time.Time) *Transaction {
	c := &Transaction{Kind: KindCorrection, Reference: reference, Corrects: t.ID, BookedAt: at}
	for _, p := range t.Postings {
		c.Postings = append(c.Postings, Posting{Account: p.Account, AmountMinor: -p.AmountMinor, Kind: KindCorrection})
	}
	return c
}

func addChecked(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

// BankOf returns the clearing bank of a bank settlement account ("" for any
// other account).
func BankOf(a Account) string {
	if a.Kind != BankSettlement {
		return ""
	}
	parts := strings.Split(a.Name, ":")
	if len(parts) != 4 {
		return ""
	}
	return parts[1]
}
