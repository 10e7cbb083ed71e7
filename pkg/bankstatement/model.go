package bankstatement

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// Format names the syntax a statement file was written in. The values are the
// ones `bcx statement inspect` prints.
type Format string

// The formats Parse understands.
const (
	FormatCamt053 Format = "camt.053"
	FormatCamt054 Format = "camt.054"
	FormatMT940   Format = "mt940"
)

// File is one parsed statement file. A camt document or an MT940 file may
// carry several statements (several accounts, or several pages/days).
type File struct {
	Format Format
	// Version is the ISO 20022 message version ("001.02" … "001.08"); empty
	// for MT940.
	Version string
	// MessageID is camt GrpHdr/MsgId; empty for MT940 (each MT940 statement
	// has its own reference, Statement.ID).
	MessageID  string
	Statements []Statement
}

// Statement is one account's statement (camt Stmt), notification (camt
// Ntfctn) or MT940 message.
type Statement struct {
	// ID is camt Stmt/Id or Ntfctn/Id, or the MT940 :20: transaction
	// reference.
	ID string
	// SequenceNumber is camt ElctrncSeqNb (or LglSeqNb when that is all there
	// is), or the MT940 :28C: statement/sequence number as written.
	SequenceNumber string
	// Account is the IBAN, or the other identification the bank uses (camt
	// Acct/Id/Othr/Id, MT940 :25:), as written.
	Account string
	// AccountServicer is the BIC of the bank holding the account when the
	// file says so (camt Acct/Svcr).
	AccountServicer string
	// Currency is the account currency: camt Acct/Ccy, else the currency of
	// the opening (or closing) balance; for MT940 the :60a: currency.
	Currency string
	// OpeningBalance is the booked opening balance (camt OPBD, else PRCD;
	// MT940 :60F:/:60M:), nil when the statement has none.
	OpeningBalance *Balance
	// ClosingBalance is the booked closing balance (camt CLBD; MT940
	// :62F:/:62M:), nil when the statement has none.
	ClosingBalance *Balance
	// Balances lists every balance in file order, including available and
	// forward balances that play no part in the balance check.
	Balances []Balance
	Entries  []Entry
	// Info is free text for the whole statement (camt AddtlStmtInf /
	// AddtlNtfctnInf, MT940 statement-level :86:).
	Info string
	// Check is the result of CheckBalance, filled in by the parser.
	Check BalanceCheck
	// Line is where the statement starts in the file (1-based).
	Line int
}

// Balance is a statement balance. Amount is signed: a debit balance (camt
// CdtDbtInd DBIT, MT940 mark D) is negative.
type Balance struct {
	// Type is the ISO 20022 balance code (OPBD, CLBD, PRCD, CLAV, ITBD, …) or
	// its proprietary text; MT940 balances are mapped to OPBD (:60F:), ITBD
	// (:60M:, :62M:), CLBD (:62F:), CLAV (:64:) and FWAV (:65:).
	Type     string
	Amount   decimal.Decimal
	Currency string
	Date     Date
}

// AmountMinor returns the signed balance in minor units of a currency with
// the given exponent; see MinorUnits.
func (b Balance) AmountMinor(exponent int32) (int64, error) {
	return MinorUnits(b.Amount, exponent)
}

// Direction says whether an entry adds to (credit) or takes from (debit) the
// account balance.
type Direction string

// The two directions. The strings are the ones inspect prints.
const (
	Credit Direction = "credit"
	Debit  Direction = "debit"
)

// Entry is one booked (or pending) movement on the account.
type Entry struct {
	// Amount is never negative; Direction carries the sign.
	Amount   decimal.Decimal
	Currency string
	// Direction is the effect on the balance. For a reversal it is already
	// the reversing direction: MT940 "RC" (reversal of a credit) is a Debit,
	// "RD" a Credit; camt reports reversals with the reversing CdtDbtInd.
	Direction Direction
	// Reversal is camt RvslInd, or an MT940 RC/RD mark.
	Reversal bool
	// Status is camt Sts (BOOK, PDNG, INFO, …); MT940 entries are BOOK.
	// Only booked entries count in the balance check.
	Status      string
	BookingDate Date
	ValueDate   Date
	// BankReference is the account servicer's reference: camt
	// Ntry/AcctSvcrRef (or the single TxDtls/Refs/AcctSvcrRef when the entry
	// has none), MT940 :61: reference after "//".
	BankReference string
	// EndToEndID is the payer's end-to-end id: camt TxDtls/Refs/EndToEndId
	// when every transaction of the entry carries the same one, MT940 EREF+
	// in a structured :86:. The SEPA placeholder NOTPROVIDED is dropped so
	// that it can never match anything.
	EndToEndID string
	// CustomerReference is the MT940 :61: account owner's reference (the
	// placeholder NONREF is dropped), or camt TxDtls/Refs/InstrId for a
	// single-transaction entry.
	CustomerReference string
	// EntryReference is camt NtryRef.
	EntryReference string
	// BankTxCode is camt BkTxCd as "Domain/Family/SubFamily" (or the
	// proprietary code), or the MT940 transaction type (e.g. NTRF).
	BankTxCode string
	// RemittanceInfo is the unstructured remittance text (camt RmtInf/Ustrd
	// of a single-transaction entry, MT940 SVWZ+ or the :86: purpose).
	RemittanceInfo string
	// AdditionalInfo is camt AddtlNtryInf, or the MT940 :86: text as written
	// (line breaks removed).
	AdditionalInfo string
	// Counterparty is the other side (debtor of a credit, creditor of a
	// debit) when the file names a single one.
	Counterparty Party
	// Details are the camt TxDtls of the entry (several for a batch booking);
	// empty for MT940.
	Details []TxDetail
	// Line is where the entry starts in the file (1-based).
	Line int
}

// AmountMinor returns the (positive) entry amount in minor units of a
// currency with the given exponent; see MinorUnits.
func (e Entry) AmountMinor(exponent int32) (int64, error) {
	return MinorUnits(e.Amount, exponent)
}

// SignedAmount is the amount with the sign of its effect on the balance.
func (e Entry) SignedAmount() decimal.Decimal {
	if e.Direction == Debit {
		return e.Amount.Neg()
	}
	return e.Amount
}

// Booked reports whether the entry changes the booked balance. Entries with
// no status (MT940, or a camt file that omits it) count as booked.
func (e Entry) Booked() bool {
	return e.Status == "" || e.Status == "BOOK"
}

// TxDetail is one camt TxDtls: a single transaction inside an entry.
type TxDetail struct {
	EndToEndID    string
	InstructionID string
	TransactionID string
	BankReference string // TxDtls/Refs/AcctSvcrRef
	UETR          string
	// Amount is TxDtls/Amt (or AmtDtls/TxAmt/Amt); HasAmount is false when
	// the file gives none (then the entry amount applies).
	Amount    decimal.Decimal
	Currency  string
	HasAmount bool
	Direction Direction // empty when not given
	Debtor    Party
	Creditor  Party
	// RemittanceInfo is every RmtInf/Ustrd, joined with a space.
	RemittanceInfo string
	// CreditorReference is RmtInf/Strd/CdtrRefInf/Ref (first one).
	CreditorReference string
}

// Party is a debtor or creditor as named in the file.
type Party struct {
	Name    string
	Account string // IBAN or other account id
	Agent   string // BIC or bank code of the party's bank
}

// Date is a calendar date without time zone: booking and value dates are
// bank business days, not instants.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// IsZero reports whether the date is absent.
func (d Date) IsZero() bool { return d == Date{} }

// String formats the date as YYYY-MM-DD, or "" when absent.
func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

// Time returns midnight UTC of the date, for date arithmetic such as value
// date tolerances.
func (d Date) Time() time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC)
}

// MarshalText formats the date as YYYY-MM-DD.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// newDate builds a Date and rejects impossible calendar dates (2023-02-30),
// which time.Date would silently normalise.
func newDate(y, m, d int) (Date, bool) {
	if y < 1 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31 {
		return Date{}, false
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Day() != d || int(t.Month()) != m {
		return Date{}, false
	}
	return Date{y, time.Month(m), d}, true
}
