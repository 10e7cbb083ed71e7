package bankstatement

import (
	"fmt"
	"strings"
)

// mtField is one MT940 field: its tag ("61", "60F"), its value with
// continuation lines joined by "\n", and the line it starts on.
type mtField struct {
	tag   string
	value string
	line  int
}

// MT940 field order within a statement, as ranks: a field may follow fields
// of lower or (when repeatable) equal rank. Statement-level :86: is handled
// separately because it may come after the entries or the closing balance.
var mtRanks = map[string]int{
	"20": 1, "21": 2, "25": 3, "28C": 4, "28": 4, "13": 5, "13D": 5,
	"60F": 6, "60M": 6, "61": 7, "62F": 8, "62M": 8, "64": 9, "65": 10,
}

// mtBalanceTypes maps MT940 balance fields to the ISO 20022 balance codes
// the model uses: final opening/closing balances are the booked ones,
// intermediate (M) ones open and close a page of a multi-page statement.
var mtBalanceTypes = map[string]string{
	"60F": "OPBD", "60M": "ITBD", "62F": "CLBD", "62M": "ITBD", "64": "CLAV", "65": "FWAV",
}

// mtTagName is used in messages so that operators see the field they know.
func mtTagName(tag string) string { return ":" + tag + ":" }

type mtParser struct {
	opts   Options
	file   *File
	fields []mtField
	idx    int // index in fields of the field being handled
	cur    *mtStatement
	stmts  []Statement
}

// mtStatement is a statement being assembled.
type mtStatement struct {
	st      Statement
	rank    int            // highest rank seen
	last    string         // tag of the previous field
	seen    map[string]int // once-only tags → line
	opening *Balance
	closing *Balance
	hasInfo bool // statement-level :86: seen
}

func mtErr(line int, field, format string, args ...any) error {
	return &ParseError{Format: FormatMT940, Line: line, Field: field, Reason: fmt.Sprintf(format, args...), Err: ErrMalformed}
}

// parseMT940 reads SWIFT MT940: bare field lists (":20:…" lines, statements
// separated by "-" lines or simply by the next :20:) as well as FIN messages
// in a {1:…}{2:…}{4: … -} envelope, with LF or CRLF line ends.
func parseMT940(data []byte, o Options) (*File, error) {
	fields, err := mtTokenize(string(data))
	if err != nil {
		return nil, err
	}
	p := &mtParser{opts: o, file: &File{Format: FormatMT940}, fields: fields}
	for i, f := range fields {
		p.idx = i
		if err := p.field(f); err != nil {
			return nil, err
		}
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	if len(p.stmts) == 0 {
		return nil, mtErr(0, "", "no MT940 statement found")
	}
	p.file.Statements = p.stmts
	return p.file, nil
}

// mtTokenize splits the text into fields. A "-" line (or the "-}" that closes
// a FIN text block) ends a statement and is returned as a field with tag "-".
func mtTokenize(text string) ([]mtField, error) {
	var fields []mtField
	// Continuation lines are collected and joined when the field ends:
	// appending to the value line by line would be quadratic in the length
	// of a field.
	var cont []string
	open := false // the last field may take continuation lines
	closeField := func() {
		if len(cont) > 0 {
			f := &fields[len(fields)-1]
			f.value = f.value + "\n" + strings.Join(cont, "\n")
			cont = cont[:0]
		}
		open = false
	}
	lineNo := 0
	for len(text) > 0 {
		var line string
		line, text, _ = strings.Cut(text, "\n")
		lineNo++
		line = strings.TrimRight(line, " \t\r")
		for i := 0; i < len(line); i++ {
			if c := line[i]; c < 0x20 && c != '\t' || c == 0x7f {
				return nil, mtErr(lineNo, "", "control character 0x%02X: not a text statement", c)
			}
		}
		if line == "" {
			continue
		}
		if line[0] == '{' {
			// FIN envelope: basic/application/user header blocks, then
			// "{4:" and the text block on the following lines. Trailer
			// blocks ({5:…}) after "-}" are ignored too.
			i := strings.Index(line, "{4:")
			if i < 0 {
				if !finBlockStart(line) {
					return nil, mtErr(lineNo, "", "unexpected %q: not a SWIFT FIN block", clip(line))
				}
				closeField()
				continue
			}
			closeField()
			line = strings.TrimLeft(line[i+3:], " ")
			if line == "" {
				continue
			}
		}
		if line == "-" || strings.HasPrefix(line, "-}") {
			closeField()
			fields = append(fields, mtField{tag: "-", line: lineNo})
			continue
		}
		if tag, value, ok := mtFieldStart(line); ok {
			closeField()
			fields = append(fields, mtField{tag: tag, value: value, line: lineNo})
			open = true
			continue
		}
		if !open {
			return nil, mtErr(lineNo, "", "text outside a field: %q", clip(line))
		}
		cont = append(cont, line)
	}
	closeField()
	return fields, nil
}

// finBlockStart reports whether line starts like a FIN block ("{1:", "{5:",
// "{S:").
func finBlockStart(line string) bool {
	j := strings.IndexByte(line, ':')
	if j < 2 || j > 4 {
		return false
	}
	for _, c := range line[1:j] {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// mtFieldStart recognises ":NN:" or ":NNa:" at the start of a line.
func mtFieldStart(line string) (tag, value string, ok bool) {
	if len(line) < 4 || line[0] != ':' || !isDigit(line[1]) || !isDigit(line[2]) {
		return "", "", false
	}
	if line[3] == ':' {
		return line[1:3], line[4:], true
	}
	if len(line) >= 5 && line[3] >= 'A' && line[3] <= 'Z' && line[4] == ':' {
		return line[1:4], line[5:], true
	}
	return "", "", false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

func (p *mtParser) field(f mtField) error {
	switch {
	case f.tag == "-":
		return p.finish()
	case f.tag == "20":
		if err := p.finish(); err != nil {
			return err
		}
		p.start(f.line)
	case p.cur == nil:
		if !p.opts.AllowMT940Fragments {
			return mtErr(f.line, mtTagName(f.tag), "field outside a statement: a statement starts with :20:")
		}
		p.start(f.line)
	}
	s := p.cur
	name := mtTagName(f.tag)
	if f.tag == "86" {
		return p.info(f)
	}
	rank, known := mtRanks[f.tag]
	if !known {
		return mtErr(f.line, name, "unsupported MT940 field")
	}
	repeatable := f.tag == "61" || f.tag == "65"
	if first, dup := s.seen[f.tag]; dup && !repeatable {
		return mtErr(f.line, name, "field repeated (first at line %d)", first)
	}
	if rank < s.rank {
		return mtErr(f.line, name, "field out of order: it cannot follow %s", mtTagName(s.last))
	}
	if strings.Contains(f.value, "\n") && f.tag != "61" {
		return mtErr(f.line, name, "field spans several lines")
	}
	s.seen[f.tag] = f.line
	s.rank = rank
	s.last = f.tag
	v := strings.TrimSpace(f.value)
	switch f.tag {
	case "20":
		if v == "" {
			return mtErr(f.line, name, "empty transaction reference")
		}
		s.st.ID = v
	case "25":
		if v == "" {
			return mtErr(f.line, name, "empty account identification")
		}
		s.st.Account = v
	case "28C", "28":
		if !validStatementNumber(v) {
			return mtErr(f.line, name, "statement number %q: want 5n[/5n]", clip(v))
		}
		s.st.SequenceNumber = v
	case "21", "13", "13D":
		// Related reference and date-time indication: not needed for
		// reconciliation.
	case "60F", "60M", "62F", "62M", "64", "65":
		b, err := parseMTBalance(v)
		if err != nil {
			return mtErr(f.line, name, "%v", err)
		}
		b.Type = mtBalanceTypes[f.tag]
		s.st.Balances = append(s.st.Balances, b)
		switch f.tag[:2] {
		case "60":
			s.opening = &b
		case "62":
			s.closing = &b
		}
	case "61":
		e, err := parseMTEntry(f.value, f.line)
		if err != nil {
			return err
		}
		s.st.Entries = append(s.st.Entries, e)
	}
	return nil
}

// start opens a statement at the current field, with room for all its
// entries: they are counted ahead because entries are large and regrowing
// the slice for a long statement costs more than parsing it.
func (p *mtParser) start(line int) {
	n := 0
	for _, f := range p.fields[p.idx+1:] {
		if f.tag == "20" || f.tag == "-" {
			break
		}
		if f.tag == "61" {
			n++
		}
	}
	p.cur = &mtStatement{st: Statement{Line: line, Entries: make([]Entry, 0, n)}, seen: map[string]int{}}
}

// info handles :86:, which belongs to the :61: right before it, or else to
// the statement as a whole.
func (p *mtParser) info(f mtField) error {
	s := p.cur
	if s.last == "61" {
		applyMT86(&s.st.Entries[len(s.st.Entries)-1], f.value)
		s.last = "86"
		return nil
	}
	if s.last == "86" && !s.hasInfo {
		return mtErr(f.line, ":86:", "second :86: for the same :61:")
	}
	if s.hasInfo {
		return mtErr(f.line, ":86:", "statement information given twice")
	}
	s.hasInfo = true
	s.st.Info = strings.ReplaceAll(strings.TrimSpace(f.value), "\n", "")
	s.last = "86"
	return nil
}

// finish closes the statement being assembled, checking that it has what a
// statement must have.
func (p *mtParser) finish() error {
	s := p.cur
	if s == nil {
		return nil
	}
	p.cur = nil
	if !p.opts.AllowMT940Fragments {
		for _, need := range []struct{ tags, what string }{
			{"25", ":25: account identification"},
			{"60", ":60F:/:60M: opening balance"},
			{"62", ":62F:/:62M: closing balance"},
		} {
			if !s.hasPrefix(need.tags) {
				return mtErr(s.st.Line, "", "statement %q has no %s", clip(s.st.ID), need.what)
			}
		}
	}
	st := s.st
	if s.opening != nil {
		st.OpeningBalance = s.opening
		st.Currency = s.opening.Currency
	} else if s.closing != nil {
		st.Currency = s.closing.Currency
	}
	st.ClosingBalance = s.closing
	for i := range st.Entries {
		st.Entries[i].Currency = st.Currency
	}
	p.stmts = append(p.stmts, st)
	return nil
}

func (s *mtStatement) hasPrefix(prefix string) bool {
	for tag := range s.seen {
		if strings.HasPrefix(tag, prefix) {
			return true
		}
	}
	return false
}

func validStatementNumber(v string) bool {
	num, seq, hasSeq := strings.Cut(v, "/")
	ok := func(s string) bool { return len(s) >= 1 && len(s) <= 5 && allDigits(s) }
	return ok(num) && (!hasSeq || ok(seq))
}

// parseMTBalance reads 1!a6!n3!a15d: mark, YYMMDD, currency, amount.
func parseMTBalance(v string) (Balance, error) {
	var b Balance
	if len(v) < 11 {
		return b, fmt.Errorf("balance %q too short: want C/D mark, YYMMDD, currency, amount", clip(v))
	}
	mark := v[0]
	if mark != 'C' && mark != 'D' {
		return b, fmt.Errorf("balance mark %q: want C or D", v[:1])
	}
	d, ok := parseYYMMDD(v[1:7])
	if !ok {
		return b, fmt.Errorf("invalid date %q", v[1:7])
	}
	if !validCurrency(v[7:10]) {
		return b, fmt.Errorf("invalid currency %q: want three upper-case letters", v[7:10])
	}
	amt, err := parseSwiftAmount(v[10:])
	if err != nil {
		return b, err
	}
	if mark == 'D' {
		amt = amt.Neg()
	}
	return Balance{Amount: amt, Currency: v[7:10], Date: d}, nil
}

// parseYYMMDD maps two-digit years to 1980–2079, the usual pivot for SWIFT
// dates.
func parseYYMMDD(s string) (Date, bool) {
	if len(s) != 6 || !allDigits(s) {
		return Date{}, false
	}
	y := atoi(s[:2])
	if y < 80 {
		y += 2000
	} else {
		y += 1900
	}
	return newDate(y, atoi(s[2:4]), atoi(s[4:]))
}

// parseMTEntry reads a :61: statement line:
//
//	6!n[4!n]2a[1!a]15d1!a3!c16x[//16x][CRLF 34x]
//
// value date, entry (booking) date MMDD, mark (C, D, RC, RD), funds code,
// amount, transaction type, customer reference, bank reference, supplementary
// details.
func parseMTEntry(v string, line int) (Entry, error) {
	bad := func(format string, args ...any) (Entry, error) {
		return Entry{}, mtErr(line, ":61:", format, args...)
	}
	first, extra, _ := strings.Cut(v, "\n")
	s := strings.TrimLeft(first, " ")
	e := Entry{Line: line, Status: "BOOK"}
	if len(s) < 6 {
		return bad("statement line too short")
	}
	vd, ok := parseYYMMDD(s[:6])
	if !ok {
		return bad("invalid value date %q", s[:6])
	}
	e.ValueDate = vd
	s = s[6:]
	if len(s) >= 4 && allDigits(s[:4]) {
		bd, ok := entryDate(vd, atoi(s[:2]), atoi(s[2:4]))
		if !ok {
			return bad("invalid entry date %q", s[:4])
		}
		e.BookingDate = bd
		s = s[4:]
	} else {
		// Without an entry date the booking date is the value date: that is
		// how banks that omit it mean it.
		e.BookingDate = vd
	}
	switch {
	case strings.HasPrefix(s, "RC"):
		e.Direction, e.Reversal, s = Debit, true, s[2:]
	case strings.HasPrefix(s, "RD"):
		e.Direction, e.Reversal, s = Credit, true, s[2:]
	case strings.HasPrefix(s, "C"):
		e.Direction, s = Credit, s[1:]
	case strings.HasPrefix(s, "D"):
		e.Direction, s = Debit, s[1:]
	default:
		return bad("debit/credit mark %q: want C, D, RC or RD", clip(s))
	}
	if len(s) > 0 && isUpper(s[0]) {
		s = s[1:] // funds code: third letter of the currency code
	}
	n := 0
	for n < len(s) && (isDigit(s[n]) || s[n] == ',' || s[n] == '.') {
		n++
	}
	amt, err := parseSwiftAmount(s[:n])
	if err != nil {
		return bad("%v", err)
	}
	e.Amount = amt
	s = s[n:]
	if len(s) < 4 || !strings.ContainsRune("SNF", rune(s[0])) || !alnum(s[1:4]) {
		return bad("missing transaction type identification code (such as NTRF) after the amount")
	}
	e.BankTxCode = s[:4]
	cust, bank, _ := strings.Cut(s[4:], "//")
	e.CustomerReference = strings.TrimSpace(cust)
	if e.CustomerReference == "NONREF" {
		e.CustomerReference = ""
	}
	e.BankReference = strings.TrimSpace(bank)
	if extra != "" {
		e.AdditionalInfo = strings.TrimSpace(strings.ReplaceAll(extra, "\n", " "))
	}
	return e, nil
}

func alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) && !isUpper(s[i]) {
			return false
		}
	}
	return true
}

// entryDate gives the MMDD entry date the year that puts it closest to the
// value date, so that a 31 December booking with a 2 January value date lands
// in the previous year.
func entryDate(value Date, month, day int) (Date, bool) {
	best, found := Date{}, false
	var bestGap float64
	for _, y := range []int{value.Year - 1, value.Year, value.Year + 1} {
		d, ok := newDate(y, month, day)
		if !ok {
			continue
		}
		gap := d.Time().Sub(value.Time()).Hours()
		if gap < 0 {
			gap = -gap
		}
		if !found || gap < bestGap {
			best, bestGap, found = d, gap, true
		}
	}
	return best, found
}

// sepaTags are the SEPA purpose keywords German banks write into the :86:
// purpose subfields ("EREF+…SVWZ+…"), with the length of the SEPA element
// each one carries (0: no limit).
var sepaTags = []struct {
	tag string
	max int
}{
	{"EREF+", 35}, {"KREF+", 35}, {"MREF+", 35}, {"CRED+", 35}, {"DEBT+", 35},
	{"SVWZ+", 140}, {"ABWA+", 70}, {"ABWE+", 70}, {"COAM+", 0}, {"OAMT+", 0},
}

// applyMT86 reads the :86: information to account owner into the entry. The
// German structured form ("166?00GUTSCHRIFT?20EREF+…?32Name") yields the
// end-to-end id, remittance text and counterparty; any other text is kept as
// remittance information.
func applyMT86(e *Entry, raw string) {
	// Lines are wrapped at 65 characters wherever the limit falls, often
	// inside a word or a subfield number, so they are joined without a
	// separator.
	joined := strings.TrimSpace(strings.ReplaceAll(raw, "\n", ""))
	e.AdditionalInfo = strings.TrimSpace(joined + " " + e.AdditionalInfo)
	if len(joined) < 4 || !allDigits(joined[:3]) || joined[3] != '?' {
		e.RemittanceInfo = joined
		return
	}
	var purpose []string
	var name strings.Builder
	for _, sf := range splitSubfields(joined[3:]) {
		switch k := sf.key; {
		case k >= "20" && k <= "29", k >= "60" && k <= "63":
			purpose = append(purpose, sf.value)
		case k == "30":
			e.Counterparty.Agent = strings.TrimSpace(sf.value)
		case k == "31":
			e.Counterparty.Account = strings.TrimSpace(sf.value)
		case k == "32", k == "33":
			name.WriteString(sf.value)
		}
	}
	e.Counterparty.Name = strings.TrimSpace(name.String())
	tags := splitSEPA(purpose)
	if len(tags) == 0 {
		e.RemittanceInfo = strings.TrimSpace(strings.Join(purpose, ""))
		return
	}
	if id := tags["EREF"]; id != notProvided {
		e.EndToEndID = id
	}
	e.RemittanceInfo = tags["SVWZ"]
}

type subfield struct{ key, value string }

// splitSubfields splits "?00text?20text…" at each "?" followed by two digits.
func splitSubfields(s string) []subfield {
	var out []subfield
	for len(s) >= 3 && s[0] == '?' && isDigit(s[1]) && isDigit(s[2]) {
		key := s[1:3]
		s = s[3:]
		end := len(s)
		for i := 0; i+2 < len(s); i++ {
			if s[i] == '?' && isDigit(s[i+1]) && isDigit(s[i+2]) {
				end = i
				break
			}
		}
		out = append(out, subfield{key, s[:end]})
		s = s[end:]
	}
	return out
}

// splitSEPA assigns the purpose subfields to SEPA keywords. A value runs on
// into the following subfields (banks split a 35-character end-to-end id over
// two 27-character subfields) but never beyond the length SEPA allows for it:
// text that would overflow is bank commentary ("MTLG:…"), not part of the id
// a payment will be matched on. The first occurrence of a keyword wins.
func splitSEPA(purpose []string) map[string]string {
	var out map[string]string
	var cur string // keyword whose value is still open
	var curMax int
	var val strings.Builder
	flush := func() {
		if cur != "" {
			if _, dup := out[cur]; !dup {
				out[cur] = strings.TrimSpace(val.String())
			}
		}
		cur = ""
		val.Reset()
	}
	for _, sf := range purpose {
		for len(sf) > 0 {
			pos, tag, max := nextSEPATag(sf)
			text := sf
			if pos >= 0 {
				text = sf[:pos]
			}
			if cur != "" && text != "" {
				if curMax > 0 && val.Len()+len(text) > curMax {
					flush()
				} else {
					val.WriteString(text)
				}
			}
			if pos < 0 {
				break
			}
			flush()
			if out == nil {
				out = map[string]string{}
			}
			cur, curMax = tag, max
			sf = sf[pos+5:]
			// The keyword's own text within this subfield always belongs
			// to it; only continuations are length-checked.
			next, _, _ := nextSEPATag(sf)
			if next < 0 {
				next = len(sf)
			}
			val.WriteString(sf[:next])
			sf = sf[next:]
		}
	}
	flush()
	return out
}

func nextSEPATag(s string) (pos int, tag string, max int) {
	for i := 0; i+5 <= len(s); i++ {
		if s[i+4] != '+' {
			continue
		}
		for _, t := range sepaTags {
			if s[i:i+5] == t.tag {
				return i, t.tag[:4], t.max
			}
		}
	}
	return -1, "", 0
}
