package bankstatement

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

const (
	camtNSPrefix = "urn:iso:std:iso:20022:tech:xsd:"
	// maxXMLDepth bounds element nesting. The deepest path this parser reads
	// is about a dozen levels (Document/…/TxDtls/RltdPties/Dbtr/Pty/Nm);
	// supplementary data may nest further, but nothing legitimate comes
	// close, and an unbounded element stack is a cheap memory attack.
	maxXMLDepth = 64
	// notProvided is the SEPA placeholder for "no end-to-end id".
	notProvided = "NOTPROVIDED"
	// minEntryBytes is less than the smallest valid <Ntry>; it bounds the
	// capacity reserved for a statement's entries.
	minEntryBytes = 64
)

// camtVersion maps a document namespace to a supported message and version.
func camtVersion(ns string) (Format, string, bool) {
	rest, ok := strings.CutPrefix(ns, camtNSPrefix)
	if !ok {
		return "", "", false
	}
	var f Format
	switch {
	case strings.HasPrefix(rest, "camt.053.001."):
		f = FormatCamt053
	case strings.HasPrefix(rest, "camt.054.001."):
		f = FormatCamt054
	default:
		return "", "", false
	}
	switch v := rest[len("camt.05x."):]; v {
	case "001.02", "001.03", "001.04", "001.05", "001.06", "001.07", "001.08":
		return f, v, true
	}
	return "", "", false
}

// camtParser decodes a camt document element by element from the streaming
// xmlScanner: a statement of 100,000 entries is never held as a DOM, and
// elements the ledger does not need (supplementary data, postal addresses)
// cost only a skip. Each method is called with the start tag of its element
// just read and returns after its end tag.
type camtParser struct {
	s      *xmlScanner
	ns     string
	format Format
	tbuf   []byte
}

func parseCamt(data []byte) (*File, error) {
	sc, err := newXMLScanner(data)
	p := &camtParser{s: sc}
	if err != nil {
		p.s = &xmlScanner{data: data} // for the error position
		return nil, p.wrap(err)
	}
	return p.document()
}

// wrap turns scanner errors into ParseErrors with a line and column.
func (p *camtParser) wrap(err error) error {
	var xe *xmlError
	if !errors.As(err, &xe) {
		return err
	}
	line, col := p.s.position(xe.pos)
	if xe.dtd {
		return &ParseError{Format: p.format, Line: line, Column: col, Reason: xe.reason, Err: ErrForbiddenDTD}
	}
	return &ParseError{Format: p.format, Line: line, Column: col, Reason: "malformed XML: " + xe.reason, Err: ErrMalformed}
}

// errAt reports a content error at byte offset pos (usually just after the
// start tag of the element concerned).
func (p *camtParser) errAt(pos int, field, format string, args ...any) error {
	line, col := p.s.position(pos)
	return &ParseError{Format: p.format, Line: line, Column: col, Field: field, Reason: fmt.Sprintf(format, args...), Err: ErrMalformed}
}

// child reads up to the next child element, in the document namespace, of
// the element being read; it returns false at that element's end tag.
// Elements of other namespaces are skipped. Text in an element that should
// only hold elements means the document is not what it claims to be.
func (p *camtParser) child(path string) (bool, error) {
	for {
		if err := p.s.next(); err != nil {
			return false, p.wrap(err)
		}
		switch p.s.kind {
		case tokStart:
			if p.s.space != p.ns {
				if err := p.skip(); err != nil {
					return false, err
				}
				continue
			}
			return true, nil
		case tokEnd:
			return false, nil
		case tokEOF:
			return false, p.errAt(p.s.pos, path, "unexpected end of document")
		case tokText:
			if t := bytes.TrimSpace(p.s.text); len(t) != 0 {
				return false, p.errAt(p.s.pos, path, "unexpected text %q", clip(string(t)))
			}
		}
	}
}

// skip consumes the rest of the element whose start tag was just read.
func (p *camtParser) skip() error {
	for n := 1; n > 0; {
		if err := p.s.next(); err != nil {
			return p.wrap(err)
		}
		switch p.s.kind {
		case tokStart:
			n++
		case tokEnd:
			n--
		case tokEOF:
			return p.errAt(p.s.pos, "", "unexpected end of document")
		}
	}
	return nil
}

// text reads the content of a simple element, trimmed of surrounding
// whitespace.
func (p *camtParser) text(path string) (string, error) {
	p.tbuf = p.tbuf[:0]
	for {
		if err := p.s.next(); err != nil {
			return "", p.wrap(err)
		}
		switch p.s.kind {
		case tokText:
			p.tbuf = p.s.appendText(p.tbuf)
		case tokStart:
			return "", p.errAt(p.s.pos, path, "unexpected element <%s> inside a text element", clip(string(p.s.local)))
		case tokEnd:
			return string(bytes.TrimSpace(p.tbuf)), nil
		case tokEOF:
			return "", p.errAt(p.s.pos, path, "unexpected end of document")
		}
	}
}

// code reads an element that is a plain code in early message versions and a
// Cd/Prtry choice in later ones (Ntry/Sts: "BOOK" up to 001.06,
// <Cd>BOOK</Cd> from 001.07).
func (p *camtParser) code(path string) (string, error) {
	var plain []byte
	var inner string
	for {
		if err := p.s.next(); err != nil {
			return "", p.wrap(err)
		}
		switch p.s.kind {
		case tokText:
			plain = p.s.appendText(plain)
		case tokStart:
			var err error
			if p.s.space == p.ns && (string(p.s.local) == "Cd" || string(p.s.local) == "Prtry") {
				inner, err = p.text(path)
			} else {
				err = p.skip()
			}
			if err != nil {
				return "", err
			}
		case tokEnd:
			if inner != "" {
				return inner, nil
			}
			return string(bytes.TrimSpace(plain)), nil
		case tokEOF:
			return "", p.errAt(p.s.pos, path, "unexpected end of document")
		}
	}
}

func (p *camtParser) amount(path string) (decimal.Decimal, string, error) {
	pos := p.s.pos
	ccy, _ := p.s.attr("Ccy")
	s, err := p.text(path)
	if err != nil {
		return decimal.Decimal{}, "", err
	}
	amt, err := parseISOAmount(s)
	if err != nil {
		return decimal.Decimal{}, "", p.errAt(pos, path, "%v", err)
	}
	if ccy == "" {
		return decimal.Decimal{}, "", p.errAt(pos, path, "missing Ccy attribute")
	}
	if !validCurrency(ccy) {
		return decimal.Decimal{}, "", p.errAt(pos, path, "invalid currency %q in Ccy attribute: want three upper-case letters", clip(ccy))
	}
	return amt, ccy, nil
}

func (p *camtParser) direction(path string) (Direction, error) {
	pos := p.s.pos
	s, err := p.text(path)
	if err != nil {
		return "", err
	}
	switch s {
	case "CRDT":
		return Credit, nil
	case "DBIT":
		return Debit, nil
	}
	return "", p.errAt(pos, path, "credit/debit indicator %q: want CRDT or DBIT", clip(s))
}

func (p *camtParser) boolean(path string) (bool, error) {
	pos := p.s.pos
	s, err := p.text(path)
	if err != nil {
		return false, err
	}
	switch s {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, p.errAt(pos, path, "%q is not a boolean", clip(s))
}

// date reads a DateAndDateTimeChoice (<Dt> or <DtTm>). For a date-time the
// calendar date is taken as written, in the bank's own offset: a booking at
// 2007-10-18T00:30+01:00 is booked on the 18th, not on the 17th UTC.
func (p *camtParser) date(path string) (Date, error) {
	var d Date
	for {
		ok, err := p.child(path)
		if err != nil || !ok {
			return d, err
		}
		pos := p.s.pos
		switch string(p.s.local) {
		case "Dt", "DtTm":
			parse, what := parseISODate, "date"
			if string(p.s.local) == "DtTm" {
				parse, what = parseISODateTime, "date-time"
			}
			s, err := p.text(path)
			if err != nil {
				return Date{}, err
			}
			var good bool
			if d, good = parse(s); !good {
				return Date{}, p.errAt(pos, path, "malformed %s %q", what, clip(s))
			}
		default:
			if err := p.skip(); err != nil {
				return Date{}, err
			}
		}
	}
}

// parseISODate accepts xs:date: YYYY-MM-DD with an optional zone suffix.
func parseISODate(s string) (Date, bool) {
	if len(s) < 10 {
		return Date{}, false
	}
	d, ok := parseYMD(s[:10])
	if !ok {
		return Date{}, false
	}
	switch zone := s[10:]; {
	case zone == "", zone == "Z":
		return d, true
	case len(zone) == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':' &&
		allDigits(zone[1:3]) && allDigits(zone[4:]):
		return d, true
	}
	return Date{}, false
}

// parseISODateTime accepts xs:dateTime as ISO 20022 uses it (ISODateTime):
// with or without fractional seconds and zone.
func parseISODateTime(s string) (Date, bool) {
	if len(s) < 19 || s[10] != 'T' {
		return Date{}, false
	}
	d, ok := parseYMD(s[:10])
	if !ok {
		return Date{}, false
	}
	for _, layout := range [...]string{"2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05"} {
		// time.Parse accepts fractional seconds after the seconds field
		// even when the layout does not mention them.
		if _, err := time.Parse(layout, s); err == nil {
			return d, true
		}
	}
	return Date{}, false
}

func parseYMD(s string) (Date, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' || !allDigits(s[:4]) || !allDigits(s[5:7]) || !allDigits(s[8:]) {
		return Date{}, false
	}
	return newDate(atoi(s[:4]), atoi(s[5:7]), atoi(s[8:]))
}

// atoi converts a string already checked to be short and all digits.
func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func (p *camtParser) document() (*File, error) {
	if err := p.s.next(); err != nil {
		return nil, p.wrap(err)
	}
	// The scanner only returns text inside the root, so this is the root.
	rootPos := p.s.pos
	local, ns := string(p.s.local), p.s.space
	line, _ := p.s.position(rootPos)
	if local != "Document" {
		return nil, &ParseError{Line: line, Reason: fmt.Sprintf("root element <%s> (namespace %q) is not an ISO 20022 <Document>", clip(local), clip(ns)), Err: ErrUnknownFormat}
	}
	format, version, ok := camtVersion(ns)
	if !ok {
		reason := fmt.Sprintf("namespace %q is not supported; supported are camt.053.001.02 to camt.053.001.08 and camt.054.001.02 to camt.054.001.08", ns)
		if ns == "" {
			reason = "<Document> has no namespace; supported are camt.053.001.02 to .08 and camt.054.001.02 to .08"
		}
		return nil, &ParseError{Line: line, Reason: reason, Err: ErrUnsupportedNamespace}
	}
	p.ns, p.format = ns, format
	msgElem, stmtElem := "BkToCstmrStmt", "Stmt"
	if format == FormatCamt054 {
		msgElem, stmtElem = "BkToCstmrDbtCdtNtfctn", "Ntfctn"
	}
	f := &File{Format: format, Version: version}
	seen := false
	for {
		ok, err := p.child("Document")
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if string(p.s.local) != msgElem || seen {
			return nil, p.errAt(p.s.pos, "Document", "unexpected element <%s>: a %s document holds exactly one <%s>", clip(string(p.s.local)), format, msgElem)
		}
		seen = true
		if err := p.message(f, msgElem, stmtElem); err != nil {
			return nil, err
		}
	}
	if !seen {
		return nil, p.errAt(rootPos, "Document", "no <%s> message", msgElem)
	}
	if len(f.Statements) == 0 {
		return nil, p.errAt(p.s.pos, msgElem, "the message contains no <%s>: there is nothing to reconcile", stmtElem)
	}
	// Only comments, processing instructions and whitespace may follow.
	if err := p.s.next(); err != nil {
		return nil, p.wrap(err)
	}
	if p.s.kind != tokEOF {
		return nil, p.errAt(p.s.pos, "", "content after the root element")
	}
	return f, nil
}

func (p *camtParser) message(f *File, msgElem, stmtElem string) error {
	for {
		ok, err := p.child(msgElem)
		if err != nil || !ok {
			return err
		}
		switch string(p.s.local) {
		case "GrpHdr":
			for {
				ok, err := p.child("GrpHdr")
				if err != nil {
					return err
				}
				if !ok {
					break
				}
				if string(p.s.local) == "MsgId" {
					f.MessageID, err = p.text("GrpHdr/MsgId")
				} else {
					err = p.skip()
				}
				if err != nil {
					return err
				}
			}
		case stmtElem:
			st, err := p.statement(stmtElem)
			if err != nil {
				return err
			}
			f.Statements = append(f.Statements, st)
		default:
			if err := p.skip(); err != nil {
				return err
			}
		}
	}
}

// entriesHint reads TxsSummry/TtlNtries/NbOfNtries, the number of entries
// the bank says follow, so that a large statement's entry slice is allocated
// once instead of being regrown and copied a dozen times. The number is only
// a capacity hint, bounded by the bytes left in the document: a wrong or
// hostile value costs a reallocation, nothing else.
func (p *camtParser) entriesHint() (int, error) {
	n := 0
	for {
		ok, err := p.child("TxsSummry")
		if err != nil || !ok {
			return min(n, (len(p.s.data)-p.s.pos)/minEntryBytes), err
		}
		if string(p.s.local) != "TtlNtries" {
			if err := p.skip(); err != nil {
				return 0, err
			}
			continue
		}
		for {
			ok, err := p.child("TxsSummry/TtlNtries")
			if err != nil {
				return 0, err
			}
			if !ok {
				break
			}
			if string(p.s.local) != "NbOfNtries" {
				err = p.skip()
			} else if v, err2 := p.text("TxsSummry/TtlNtries/NbOfNtries"); err2 != nil {
				err = err2
			} else if len(v) <= 9 && allDigits(v) {
				n = atoi(v)
			}
			if err != nil {
				return 0, err
			}
		}
	}
}

func (p *camtParser) statement(elem string) (Statement, error) {
	start := p.s.pos
	st := Statement{Line: p.s.lineOfPos(start)}
	var acct, acctCcy, elecSeq, legalSeq string
	acctPos := start
	for {
		ok, err := p.child(elem)
		if err != nil {
			return st, err
		}
		if !ok {
			break
		}
		switch string(p.s.local) {
		case "Id":
			st.ID, err = p.text(elem + "/Id")
		case "ElctrncSeqNb":
			elecSeq, err = p.text(elem + "/ElctrncSeqNb")
		case "LglSeqNb":
			legalSeq, err = p.text(elem + "/LglSeqNb")
		case "Acct":
			acctPos = p.s.pos
			acct, acctCcy, st.AccountServicer, err = p.account()
		case "Bal":
			var b Balance
			if b, err = p.balance(); err == nil {
				st.Balances = append(st.Balances, b)
			}
		case "TxsSummry":
			var hint int
			if hint, err = p.entriesHint(); err == nil && st.Entries == nil && hint > 0 {
				st.Entries = make([]Entry, 0, hint)
			}
		case "Ntry":
			st.Entries = append(st.Entries, Entry{})
			if err = p.entry(&st.Entries[len(st.Entries)-1]); err != nil {
				return st, err
			}
		case "AddtlStmtInf", "AddtlNtfctnInf":
			st.Info, err = p.text(elem + "/" + string(p.s.local))
		default:
			err = p.skip()
		}
		if err != nil {
			return st, err
		}
	}
	if acct == "" {
		return st, p.errAt(acctPos, elem+"/Acct", "statement has no account identification (Acct/Id/IBAN or Acct/Id/Othr/Id)")
	}
	st.Account = acct
	st.SequenceNumber = elecSeq
	if st.SequenceNumber == "" {
		st.SequenceNumber = legalSeq
	}
	// OPBD opens and CLBD closes a statement; PRCD, the previous
	// statement's closing balance, opens one that has no OPBD.
	var prcd *Balance
	for i := range st.Balances {
		b := st.Balances[i] // a copy, so that the statement does not alias its own slice
		var slot **Balance
		switch b.Type {
		case "OPBD":
			slot = &st.OpeningBalance
		case "CLBD":
			slot = &st.ClosingBalance
		case "PRCD":
			slot = &prcd
		default:
			continue
		}
		if *slot != nil {
			return st, p.errAt(start, elem+"/Bal", "statement has two %s balances", b.Type)
		}
		*slot = &b
	}
	if st.OpeningBalance == nil {
		st.OpeningBalance = prcd
	}
	switch {
	case acctCcy != "":
		st.Currency = acctCcy
	case st.OpeningBalance != nil:
		st.Currency = st.OpeningBalance.Currency
	case st.ClosingBalance != nil:
		st.Currency = st.ClosingBalance.Currency
	case len(st.Entries) > 0:
		st.Currency = st.Entries[0].Currency
	}
	return st, nil
}

func (p *camtParser) account() (id, ccy, servicer string, err error) {
	for {
		ok, err := p.child("Acct")
		if err != nil {
			return "", "", "", err
		}
		if !ok {
			return id, ccy, servicer, nil
		}
		switch string(p.s.local) {
		case "Id":
			id, err = p.accountID("Acct/Id")
		case "Ccy":
			pos := p.s.pos
			if ccy, err = p.text("Acct/Ccy"); err == nil && !validCurrency(ccy) {
				err = p.errAt(pos, "Acct/Ccy", "invalid currency %q: want three upper-case letters", clip(ccy))
			}
		case "Svcr":
			servicer, err = p.agent("Acct/Svcr")
		default:
			err = p.skip()
		}
		if err != nil {
			return "", "", "", err
		}
	}
}

// accountID reads an AccountIdentification choice: IBAN or Othr/Id.
func (p *camtParser) accountID(path string) (string, error) {
	var id string
	for {
		ok, err := p.child(path)
		if err != nil || !ok {
			return id, err
		}
		switch string(p.s.local) {
		case "IBAN":
			id, err = p.text(path + "/IBAN")
		case "Othr":
			for err == nil {
				if ok, err = p.child(path + "/Othr"); err != nil || !ok {
					break
				}
				if string(p.s.local) == "Id" {
					id, err = p.text(path + "/Othr/Id")
				} else {
					err = p.skip()
				}
			}
		default:
			err = p.skip()
		}
		if err != nil {
			return "", err
		}
	}
}

// agent reads a BranchAndFinancialInstitutionIdentification and returns its
// BIC (BIC in early versions, BICFI later), if any.
func (p *camtParser) agent(path string) (string, error) {
	var bic string
	for {
		ok, err := p.child(path)
		if err != nil || !ok {
			return bic, err
		}
		if string(p.s.local) != "FinInstnId" {
			if err := p.skip(); err != nil {
				return "", err
			}
			continue
		}
		for {
			ok, err := p.child(path + "/FinInstnId")
			if err != nil {
				return "", err
			}
			if !ok {
				break
			}
			if l := string(p.s.local); l == "BIC" || l == "BICFI" {
				bic, err = p.text(path + "/FinInstnId/" + l)
			} else {
				err = p.skip()
			}
			if err != nil {
				return "", err
			}
		}
	}
}

func (p *camtParser) balance() (Balance, error) {
	start := p.s.pos
	var b Balance
	var haveAmt, haveDir bool
	var dir Direction
	for {
		ok, err := p.child("Bal")
		if err != nil {
			return b, err
		}
		if !ok {
			break
		}
		switch string(p.s.local) {
		case "Tp":
			b.Type, err = p.balanceType()
		case "Amt":
			b.Amount, b.Currency, err = p.amount("Bal/Amt")
			haveAmt = true
		case "CdtDbtInd":
			dir, err = p.direction("Bal/CdtDbtInd")
			haveDir = true
		case "Dt":
			b.Date, err = p.date("Bal/Dt")
		default:
			err = p.skip()
		}
		if err != nil {
			return b, err
		}
	}
	switch {
	case b.Type == "":
		return b, p.errAt(start, "Bal", "balance has no type (Tp/CdOrPrtry/Cd)")
	case !haveAmt:
		return b, p.errAt(start, "Bal", "%s balance has no <Amt>", b.Type)
	case !haveDir:
		return b, p.errAt(start, "Bal", "%s balance has no <CdtDbtInd>", b.Type)
	}
	if dir == Debit {
		b.Amount = b.Amount.Neg()
	}
	return b, nil
}

// balanceType reads Tp/CdOrPrtry/(Cd|Prtry); Tp/SubTp is ignored.
func (p *camtParser) balanceType() (string, error) {
	var tp string
	for {
		ok, err := p.child("Bal/Tp")
		if err != nil || !ok {
			return tp, err
		}
		if string(p.s.local) == "CdOrPrtry" {
			tp, err = p.code("Bal/Tp/CdOrPrtry")
		} else {
			err = p.skip()
		}
		if err != nil {
			return "", err
		}
	}
}

// entry reads an <Ntry> into e, which the caller has placed in the
// statement's slice already: entries are large, and building them in place
// saves a copy each.
func (p *camtParser) entry(e *Entry) error {
	start := p.s.pos
	e.Line = p.s.lineOfPos(start)
	var haveAmt, haveDir bool
	for {
		ok, err := p.child("Ntry")
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch string(p.s.local) {
		case "NtryRef":
			e.EntryReference, err = p.text("Ntry/NtryRef")
		case "Amt":
			e.Amount, e.Currency, err = p.amount("Ntry/Amt")
			haveAmt = true
		case "CdtDbtInd":
			e.Direction, err = p.direction("Ntry/CdtDbtInd")
			haveDir = true
		case "RvslInd":
			e.Reversal, err = p.boolean("Ntry/RvslInd")
		case "Sts":
			e.Status, err = p.code("Ntry/Sts")
		case "BookgDt":
			e.BookingDate, err = p.date("Ntry/BookgDt")
		case "ValDt":
			e.ValueDate, err = p.date("Ntry/ValDt")
		case "AcctSvcrRef":
			e.BankReference, err = p.text("Ntry/AcctSvcrRef")
		case "BkTxCd":
			e.BankTxCode, err = p.bankTxCode()
		case "NtryDtls":
			err = p.entryDetails(e)
		case "AddtlNtryInf":
			e.AdditionalInfo, err = p.text("Ntry/AddtlNtryInf")
		default:
			err = p.skip()
		}
		if err != nil {
			return err
		}
	}
	if !haveAmt {
		return p.errAt(start, "Ntry", "entry has no <Amt>")
	}
	if !haveDir {
		return p.errAt(start, "Ntry", "entry has no <CdtDbtInd>")
	}
	summarizeDetails(e)
	return nil
}

// summarizeDetails lifts what the transactions of an entry agree on to the
// entry, where reconciliation looks first. A batch entry whose transactions
// carry different end-to-end ids keeps them only in Details (one-to-many
// matching), rather than pretending one of them identifies the entry.
func summarizeDetails(e *Entry) {
	if len(e.Details) == 0 {
		return
	}
	e.EndToEndID = agreed(e.Details, func(d *TxDetail) string { return d.EndToEndID })
	if e.BankReference == "" {
		e.BankReference = agreed(e.Details, func(d *TxDetail) string { return d.BankReference })
	}
	if len(e.Details) == 1 {
		d := &e.Details[0]
		e.RemittanceInfo = d.RemittanceInfo
		e.CustomerReference = d.InstructionID
		if e.Direction == Credit {
			e.Counterparty = d.Debtor
		} else {
			e.Counterparty = d.Creditor
		}
	}
}

// agreed returns the value every detail that has one agrees on, or "".
func agreed(ds []TxDetail, get func(*TxDetail) string) string {
	v := ""
	for i := range ds {
		s := get(&ds[i])
		if s == "" {
			continue
		}
		if v != "" && s != v {
			return ""
		}
		v = s
	}
	return v
}

func (p *camtParser) bankTxCode() (string, error) {
	var domain, family, sub, prtry string
	for {
		ok, err := p.child("BkTxCd")
		if err != nil {
			return "", err
		}
		if !ok {
			break
		}
		switch string(p.s.local) {
		case "Domn":
			for err == nil {
				if ok, err = p.child("BkTxCd/Domn"); err != nil || !ok {
					break
				}
				switch string(p.s.local) {
				case "Cd":
					domain, err = p.text("BkTxCd/Domn/Cd")
				case "Fmly":
					for err == nil {
						if ok, err = p.child("BkTxCd/Domn/Fmly"); err != nil || !ok {
							break
						}
						switch string(p.s.local) {
						case "Cd":
							family, err = p.text("BkTxCd/Domn/Fmly/Cd")
						case "SubFmlyCd":
							sub, err = p.text("BkTxCd/Domn/Fmly/SubFmlyCd")
						default:
							err = p.skip()
						}
					}
				default:
					err = p.skip()
				}
			}
		case "Prtry":
			prtry, err = p.code("BkTxCd/Prtry")
		default:
			err = p.skip()
		}
		if err != nil {
			return "", err
		}
	}
	if domain != "" {
		return domain + "/" + family + "/" + sub, nil
	}
	return prtry, nil
}

func (p *camtParser) entryDetails(e *Entry) error {
	for {
		ok, err := p.child("NtryDtls")
		if err != nil || !ok {
			return err
		}
		if string(p.s.local) == "TxDtls" {
			e.Details = append(e.Details, TxDetail{})
			err = p.txDetail(&e.Details[len(e.Details)-1])
		} else {
			err = p.skip()
		}
		if err != nil {
			return err
		}
	}
}

func (p *camtParser) txDetail(d *TxDetail) error {
	var ustrd []string
	for {
		ok, err := p.child("TxDtls")
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch string(p.s.local) {
		case "Refs":
			err = p.refs(d)
		case "Amt":
			d.Amount, d.Currency, err = p.amount("TxDtls/Amt")
			d.HasAmount = true
		case "AmtDtls":
			// 001.02/001.03 carry the transaction amount in AmtDtls/TxAmt/Amt.
			err = p.amountDetails(d)
		case "CdtDbtInd":
			d.Direction, err = p.direction("TxDtls/CdtDbtInd")
		case "RltdPties":
			err = p.relatedParties(d)
		case "RltdAgts":
			err = p.relatedAgents(d)
		case "RmtInf":
			ustrd, err = p.remittance(d, ustrd)
		default:
			err = p.skip()
		}
		if err != nil {
			return err
		}
	}
	if len(ustrd) == 1 {
		d.RemittanceInfo = ustrd[0]
	} else {
		d.RemittanceInfo = strings.Join(ustrd, " ")
	}
	return nil
}

func (p *camtParser) refs(d *TxDetail) error {
	for {
		ok, err := p.child("TxDtls/Refs")
		if err != nil || !ok {
			return err
		}
		switch string(p.s.local) {
		case "EndToEndId":
			d.EndToEndID, err = p.text("TxDtls/Refs/EndToEndId")
			if d.EndToEndID == notProvided {
				d.EndToEndID = ""
			}
		case "InstrId":
			d.InstructionID, err = p.text("TxDtls/Refs/InstrId")
		case "TxId":
			d.TransactionID, err = p.text("TxDtls/Refs/TxId")
		case "AcctSvcrRef":
			d.BankReference, err = p.text("TxDtls/Refs/AcctSvcrRef")
		case "UETR":
			d.UETR, err = p.text("TxDtls/Refs/UETR")
		default:
			err = p.skip()
		}
		if err != nil {
			return err
		}
	}
}

func (p *camtParser) amountDetails(d *TxDetail) error {
	for {
		ok, err := p.child("TxDtls/AmtDtls")
		if err != nil || !ok {
			return err
		}
		if string(p.s.local) != "TxAmt" {
			if err := p.skip(); err != nil {
				return err
			}
			continue
		}
		for {
			ok, err := p.child("TxDtls/AmtDtls/TxAmt")
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			if string(p.s.local) != "Amt" {
				if err := p.skip(); err != nil {
					return err
				}
				continue
			}
			amt, ccy, err := p.amount("TxDtls/AmtDtls/TxAmt/Amt")
			if err != nil {
				return err
			}
			if !d.HasAmount {
				d.Amount, d.Currency, d.HasAmount = amt, ccy, true
			}
		}
	}
}

func (p *camtParser) relatedParties(d *TxDetail) error {
	for {
		ok, err := p.child("TxDtls/RltdPties")
		if err != nil || !ok {
			return err
		}
		switch string(p.s.local) {
		case "Dbtr":
			d.Debtor.Name, err = p.partyName("TxDtls/RltdPties/Dbtr")
		case "Cdtr":
			d.Creditor.Name, err = p.partyName("TxDtls/RltdPties/Cdtr")
		case "DbtrAcct":
			d.Debtor.Account, err = p.partyAccount("TxDtls/RltdPties/DbtrAcct")
		case "CdtrAcct":
			d.Creditor.Account, err = p.partyAccount("TxDtls/RltdPties/CdtrAcct")
		default:
			err = p.skip()
		}
		if err != nil {
			return err
		}
	}
}

// partyName reads Nm from a party: directly in 001.02–001.07, under Pty in
// 001.08 (where the party may also be an agent, which has no Nm here).
func (p *camtParser) partyName(path string) (string, error) {
	var name string
	for {
		ok, err := p.child(path)
		if err != nil || !ok {
			return name, err
		}
		switch string(p.s.local) {
		case "Nm":
			name, err = p.text(path + "/Nm")
		case "Pty":
			name, err = p.partyName(path + "/Pty")
		default:
			err = p.skip()
		}
		if err != nil {
			return "", err
		}
	}
}

func (p *camtParser) partyAccount(path string) (string, error) {
	var id string
	for {
		ok, err := p.child(path)
		if err != nil || !ok {
			return id, err
		}
		if string(p.s.local) == "Id" {
			id, err = p.accountID(path + "/Id")
		} else {
			err = p.skip()
		}
		if err != nil {
			return "", err
		}
	}
}

func (p *camtParser) relatedAgents(d *TxDetail) error {
	for {
		ok, err := p.child("TxDtls/RltdAgts")
		if err != nil || !ok {
			return err
		}
		switch string(p.s.local) {
		case "DbtrAgt":
			d.Debtor.Agent, err = p.agent("TxDtls/RltdAgts/DbtrAgt")
		case "CdtrAgt":
			d.Creditor.Agent, err = p.agent("TxDtls/RltdAgts/CdtrAgt")
		default:
			err = p.skip()
		}
		if err != nil {
			return err
		}
	}
}

func (p *camtParser) remittance(d *TxDetail, ustrd []string) ([]string, error) {
	for {
		ok, err := p.child("TxDtls/RmtInf")
		if err != nil {
			return nil, err
		}
		if !ok {
			return ustrd, nil
		}
		switch string(p.s.local) {
		case "Ustrd":
			var s string
			if s, err = p.text("TxDtls/RmtInf/Ustrd"); err == nil && s != "" {
				ustrd = append(ustrd, s)
			}
		case "Strd":
			err = p.structured(d)
		default:
			err = p.skip()
		}
		if err != nil {
			return nil, err
		}
	}
}

func (p *camtParser) structured(d *TxDetail) error {
	for {
		ok, err := p.child("TxDtls/RmtInf/Strd")
		if err != nil || !ok {
			return err
		}
		if string(p.s.local) != "CdtrRefInf" {
			if err := p.skip(); err != nil {
				return err
			}
			continue
		}
		for {
			ok, err := p.child("TxDtls/RmtInf/Strd/CdtrRefInf")
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			if string(p.s.local) != "Ref" {
				if err := p.skip(); err != nil {
					return err
				}
				continue
			}
			ref, err := p.text("TxDtls/RmtInf/Strd/CdtrRefInf/Ref")
			if err != nil {
				return err
			}
			if d.CreditorReference == "" {
				d.CreditorReference = ref
			}
		}
	}
}
