package bankstatement

import (
	"bufio"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
)

// GenOption adjusts GenerateCamt053.
type GenOption func(*genConfig)

type genConfig struct {
	account  string
	bic      string
	currency string
	date     Date
	// opening balance in minor units (2 decimals)
	openingMinor int64
	maxMinor     int64
	creditPct    int
	onEntry      func(Entry)
}

// WithAccount sets the statement's IBAN (default CN-style test account).
func WithAccount(iban string) GenOption { return func(c *genConfig) { c.account = iban } }

// WithServicer sets the BIC of the account servicing bank.
func WithServicer(bic string) GenOption { return func(c *genConfig) { c.bic = bic } }

// WithCurrency sets the currency of account, balances and entries (default
// CNY). Amounts are always written with two decimals.
func WithCurrency(ccy string) GenOption { return func(c *genConfig) { c.currency = ccy } }

// WithStatementDate sets the booking date of the statement (default
// 2026-01-15).
func WithStatementDate(d Date) GenOption { return func(c *genConfig) { c.date = d } }

// WithOpeningBalanceMinor sets the opening booked balance in minor units
// (default 1,000,000,000.00).
func WithOpeningBalanceMinor(m int64) GenOption { return func(c *genConfig) { c.openingMinor = m } }

// WithMaxAmountMinor bounds each entry amount (default 1,000,000.00, at
// least 0.01).
func WithMaxAmountMinor(m int64) GenOption { return func(c *genConfig) { c.maxMinor = m } }

// WithEntryHook calls fn with every entry as it is written, so that a
// benchmark can build the ledger's expected movements without parsing the
// file or holding all entries.
func WithEntryHook(fn func(Entry)) GenOption { return func(c *genConfig) { c.onEntry = fn } }

// GenerateCamt053 writes a well-formed camt.053.001.08 statement with n
// booked entries whose balances add up (opening + credits - debits =
// closing). The same n, seed and options always give the same bytes. Each
// entry has a unique end-to-end id ("BCX" seed "E" index) and bank reference, a
// random amount with two decimals, and a value date equal to or one day after
// the booking date; about 60% are credits.
//
// The output is compact (one entry per line): 100,000 entries are about
// 49 MiB, under DefaultMaxBytes (real statements carry more per entry;
// raise Options.MaxBytes for those).
func GenerateCamt053(w io.Writer, n int, seed int64, opts ...GenOption) error {
	if n < 0 {
		return errors.New("GenerateCamt053: negative entry count")
	}
	c := genConfig{
		account:      "CN7710290000012345678901",
		bic:          "BKCHCNBJXXX",
		currency:     "CNY",
		date:         Date{2026, time.January, 15},
		openingMinor: 1_000_000_000_00,
		maxMinor:     1_000_000_00,
		creditPct:    60,
	}
	for _, o := range opts {
		o(&c)
	}
	if !validCurrency(c.currency) {
		return fmt.Errorf("GenerateCamt053: invalid currency %q", c.currency)
	}
	if c.maxMinor < 1 {
		return errors.New("GenerateCamt053: maximum amount must be at least one minor unit")
	}
	if _, ok := newDate(c.date.Year, int(c.date.Month), c.date.Day); !ok {
		return errors.New("GenerateCamt053: invalid statement date")
	}
	// Two passes over the same random sequence: the closing balance goes in
	// the header, before the entries, and holding n amounts just to know it
	// would make memory grow with n.
	var credits, debits, total int64
	var creditN, debitN int
	g := newGenEntries(seed, c)
	for i := 0; i < n; i++ {
		amt, credit, _ := g.next()
		total += amt
		if credit {
			credits += amt
			creditN++
		} else {
			debits += amt
			debitN++
		}
		if credits < 0 || debits < 0 || total < 0 {
			return errors.New("GenerateCamt053: amounts overflow int64")
		}
	}
	closing := c.openingMinor + credits - debits

	bw := bufio.NewWriterSize(w, 1<<16)
	date := c.date.String()
	created := c.date.Time().Add(18*time.Hour).Format("2006-01-02T15:04:05") + "+08:00"
	msgID := fmt.Sprintf("BCXGEN%d-%s", uint64(seed), c.date.Time().Format("20060102"))
	bw.WriteString(xml.Header)
	bw.WriteString(`<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">` + "\n")
	bw.WriteString("<BkToCstmrStmt>\n<GrpHdr><MsgId>" + msgID + "</MsgId><CreDtTm>" + created + "</CreDtTm></GrpHdr>\n")
	bw.WriteString("<Stmt>\n<Id>" + msgID + "-1</Id><ElctrncSeqNb>1</ElctrncSeqNb><CreDtTm>" + created + "</CreDtTm>\n")
	bw.WriteString("<Acct><Id><IBAN>")
	xml.EscapeText(bw, []byte(c.account))
	bw.WriteString("</IBAN></Id><Ccy>" + c.currency + "</Ccy><Svcr><FinInstnId><BICFI>")
	xml.EscapeText(bw, []byte(c.bic))
	bw.WriteString("</BICFI></FinInstnId></Svcr></Acct>\n")
	prev := c.date.Time().AddDate(0, 0, -1).Format("2006-01-02")
	genBalance(bw, "OPBD", c.openingMinor, c.currency, prev)
	genBalance(bw, "CLBD", closing, c.currency, date)
	fmt.Fprintf(bw, "<TxsSummry><TtlNtries><NbOfNtries>%d</NbOfNtries><Sum>%s</Sum></TtlNtries>"+
		"<TtlCdtNtries><NbOfNtries>%d</NbOfNtries><Sum>%s</Sum></TtlCdtNtries>"+
		"<TtlDbtNtries><NbOfNtries>%d</NbOfNtries><Sum>%s</Sum></TtlDbtNtries></TxsSummry>\n",
		n, minorString(total), creditN, minorString(credits), debitN, minorString(debits))

	g = newGenEntries(seed, c)
	next := c.date.Time().AddDate(0, 0, 1).Format("2006-01-02")
	var buf []byte
	for i := 0; i < n; i++ {
		amt, credit, valNext := g.next()
		valDate := date
		if valNext {
			valDate = next
		}
		ind := "DBIT"
		if credit {
			ind = "CRDT"
		}
		e2e := fmt.Sprintf("BCX%dE%09d", uint64(seed)%1_000_000_000, i+1)
		ref := "BKREF" + date[:4] + date[5:7] + date[8:] + fmt.Sprintf("%010d", i+1)
		amount := minorString(amt)
		buf = buf[:0]
		buf = append(buf, `<Ntry><Amt Ccy="`...)
		buf = append(buf, c.currency...)
		buf = append(buf, `">`...)
		buf = append(buf, amount...)
		buf = append(buf, `</Amt><CdtDbtInd>`...)
		buf = append(buf, ind...)
		buf = append(buf, `</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>`...)
		buf = append(buf, date...)
		buf = append(buf, `</Dt></BookgDt><ValDt><Dt>`...)
		buf = append(buf, valDate...)
		buf = append(buf, `</Dt></ValDt><AcctSvcrRef>`...)
		buf = append(buf, ref...)
		buf = append(buf, `</AcctSvcrRef><BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>`...)
		if credit {
			buf = append(buf, `RCDT</Cd><SubFmlyCd>DMCT`...)
		} else {
			buf = append(buf, `ICDT</Cd><SubFmlyCd>DMCT`...)
		}
		buf = append(buf, `</SubFmlyCd></Fmly></Domn></BkTxCd><NtryDtls><TxDtls><Refs><EndToEndId>`...)
		buf = append(buf, e2e...)
		buf = append(buf, `</EndToEndId></Refs><Amt Ccy="`...)
		buf = append(buf, c.currency...)
		buf = append(buf, `">`...)
		buf = append(buf, amount...)
		buf = append(buf, `</Amt><CdtDbtInd>`...)
		buf = append(buf, ind...)
		buf = append(buf, `</CdtDbtInd><RmtInf><Ustrd>BCX `...)
		buf = append(buf, e2e...)
		buf = append(buf, "</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>\n"...)
		if _, err := bw.Write(buf); err != nil {
			return err
		}
		if c.onEntry != nil {
			e := Entry{
				Amount: decimal.New(amt, -2), Currency: c.currency, Direction: Debit,
				Status: "BOOK", BookingDate: c.date, BankReference: ref, EndToEndID: e2e,
				BankTxCode: "PMNT/ICDT/DMCT", RemittanceInfo: "BCX " + e2e,
			}
			e.ValueDate = c.date
			if valNext {
				t := c.date.Time().AddDate(0, 0, 1)
				e.ValueDate = Date{t.Year(), t.Month(), t.Day()}
			}
			if credit {
				e.Direction, e.BankTxCode = Credit, "PMNT/RCDT/DMCT"
			}
			c.onEntry(e)
		}
	}
	bw.WriteString("</Stmt>\n</BkToCstmrStmt>\n</Document>\n")
	return bw.Flush()
}

type genEntries struct {
	rng *rand.Rand
	c   genConfig
}

func newGenEntries(seed int64, c genConfig) *genEntries {
	return &genEntries{rng: rand.New(rand.NewPCG(uint64(seed), 0x6263782d62616e6b)), c: c}
}

// next draws one entry: amount in minor units (1 … max), credit or debit,
// and whether the value date is the next day.
func (g *genEntries) next() (amt int64, credit, valueNext bool) {
	amt = 1 + g.rng.Int64N(g.c.maxMinor)
	credit = g.rng.IntN(100) < g.c.creditPct
	valueNext = g.rng.IntN(4) == 0
	return
}

func genBalance(w *bufio.Writer, code string, minor int64, ccy, date string) {
	ind := "CRDT"
	if minor < 0 {
		ind, minor = "DBIT", -minor
	}
	fmt.Fprintf(w, "<Bal><Tp><CdOrPrtry><Cd>%s</Cd></CdOrPrtry></Tp><Amt Ccy=%q>%s</Amt><CdtDbtInd>%s</CdtDbtInd><Dt><Dt>%s</Dt></Dt></Bal>\n",
		code, ccy, minorString(minor), ind, date)
}

// minorString formats non-negative minor units with two decimals.
func minorString(m int64) string {
	s := strconv.FormatInt(m, 10)
	for len(s) < 3 {
		s = "0" + s
	}
	return s[:len(s)-2] + "." + s[len(s)-2:]
}
