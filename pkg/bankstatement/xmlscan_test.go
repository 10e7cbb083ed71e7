package bankstatement

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// xmlEvent is what the camt parser relies on from a tokenizer: element starts
// and ends with their namespace, and the character data inside the root.
type xmlEvent struct {
	Kind  string // "start", "end", "text"
	Space string
	Local string
	Text  string
}

func scanEvents(data []byte) ([]xmlEvent, error) {
	s, err := newXMLScanner(data)
	if err != nil {
		return nil, err
	}
	var out []xmlEvent
	for {
		if err := s.next(); err != nil {
			return nil, err
		}
		switch s.kind {
		case tokStart:
			out = append(out, xmlEvent{Kind: "start", Space: s.space, Local: string(s.local)})
		case tokEnd:
			out = append(out, xmlEvent{Kind: "end", Space: s.space, Local: string(s.local)})
		case tokText:
			out = appendTextEvent(out, string(s.appendText(nil)))
		case tokEOF:
			return out, nil
		}
	}
}

// stdEvents tokenizes with encoding/xml in strict mode, keeping what
// scanEvents keeps.
func stdEvents(data []byte) ([]xmlEvent, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	var out []xmlEvent
	depth := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			out = append(out, xmlEvent{Kind: "start", Space: t.Name.Space, Local: t.Name.Local})
		case xml.EndElement:
			depth--
			out = append(out, xmlEvent{Kind: "end", Space: t.Name.Space, Local: t.Name.Local})
		case xml.CharData:
			if depth > 0 {
				out = appendTextEvent(out, string(t))
			}
		}
	}
}

// appendTextEvent merges adjacent text (a CDATA section next to plain text
// is one run of character data).
func appendTextEvent(out []xmlEvent, text string) []xmlEvent {
	if text == "" {
		return out
	}
	if n := len(out); n > 0 && out[n-1].Kind == "text" {
		out[n-1].Text += text
		return out
	}
	return append(out, xmlEvent{Kind: "text", Text: text})
}

func TestXMLScannerAgreesWithEncodingXML(t *testing.T) {
	for _, doc := range xmlSeeds(t) {
		got, err := scanEvents(doc)
		if err != nil {
			t.Fatalf("scanner rejects %q: %v", clip(string(doc)), err)
		}
		want, err := stdEvents(doc)
		if err != nil {
			t.Fatalf("encoding/xml rejects %q: %v", clip(string(doc)), err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("events differ for %q (-encoding/xml +scanner):\n%s", clip(string(doc)), diff)
		}
	}
}

func TestXMLScannerRejects(t *testing.T) {
	tests := []struct {
		name, doc, reason string
		dtd               bool
	}{
		{"doctype", `<!DOCTYPE a><a/>`, "<!DOCTYPE", true},
		{"entity declaration", `<a><!ENTITY x "y"></a>`, "<!ENTITY", true},
		{"undefined entity", `<a>&xxe;</a>`, "undefined entity", false},
		{"bare ampersand", `<a>fish & chips</a>`, "entity reference", false},
		{"char ref to control char", `<a>&#1;</a>`, "entity reference", false},
		{"mismatched end tag", `<a><b></a></b>`, "does not match", false},
		{"unclosed", `<a><b></b>`, "not closed", false},
		{"two roots", `<a/><b/>`, "after the root", false},
		{"text after root", `<a/>x`, "outside the root", false},
		{"text before root", `x<a/>`, "outside the root", false},
		{"empty", ``, "no root", false},
		{"undeclared prefix", `<p:a/>`, "undeclared namespace prefix", false},
		{"duplicate attribute", `<a b="1" b="2"/>`, "duplicate attribute", false},
		{"unquoted attribute", `<a b=1/>`, "quoted", false},
		{"lt in attribute", `<a b="<"/>`, "'<' in attribute", false},
		{"double dash in comment", `<a><!-- x -- y --></a>`, `"--" inside a comment`, false},
		{"late declaration", `<a><?xml version="1.0"?></a>`, "not at the start", false},
		{"other encoding", `<?xml version="1.0" encoding="ISO-8859-1"?><a/>`, `encoding "ISO-8859-1"`, false},
		{"xml 1.1", `<?xml version="1.1"?><a/>`, "unsupported XML version", false},
		{"nul byte", "<a>\x00</a>", "illegal character", false},
		{"invalid utf-8", "<a>\xff</a>", "invalid UTF-8", false},
		{"non-ascii name", "<\u00e9/>", "expected a name", false},
		{"too deep", strings.Repeat("<a>", maxXMLDepth+1) + strings.Repeat("</a>", maxXMLDepth+1), "nested deeper", false},
		{"cdata outside root", `<![CDATA[x]]><a/>`, "CDATA section outside", false},
		{"cdata end in text", `<a>]]>0</a>`, `"]]>" outside a CDATA section`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := scanEvents([]byte(tt.doc))
			var xe *xmlError
			if !errors.As(err, &xe) {
				t.Fatalf("got %v, want an xmlError", err)
			}
			if !strings.Contains(xe.reason, tt.reason) || xe.dtd != tt.dtd {
				t.Errorf("got %q (dtd %v), want it to mention %q (dtd %v)", xe.reason, xe.dtd, tt.reason, tt.dtd)
			}
		})
	}
}

func xmlSeeds(t testing.TB) [][]byte {
	docs := []string{
		`<a/>`,
		`<?xml version="1.0" encoding="UTF-8"?>` + "\n<a>x</a>\n",
		`<a xmlns="urn:x"><b>t&amp;u&lt;&#65;&#x42;&quot;&apos;&gt;</b><c/></a>`,
		`<p:a xmlns:p="urn:p" xmlns="urn:d"><p:b/><c xmlns=""><d/></c><e/></p:a>`,
		`<a><![CDATA[<not a tag> & ]]>tail</a>`,
		"<a>line1\r\nline2\rline3</a>",
		`<a><!-- comment --><?pi data?>x<b  at = 'v' ></b ></a><!-- after -->`,
		`<a xml:lang="en"><xml:b/></a>`,
	}
	out := make([][]byte, 0, len(docs)+8)
	for _, d := range docs {
		out = append(out, []byte(d))
	}
	files, _ := filepath.Glob("testdata/camt/*.xml")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// FuzzXMLScanner checks that the scanner is never more lenient than
// encoding/xml: whatever it accepts, encoding/xml accepts with the same
// elements, namespaces and text.
func FuzzXMLScanner(f *testing.F) {
	for _, d := range xmlSeeds(f) {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := scanEvents(data)
		if err != nil {
			return
		}
		want, err := stdEvents(data)
		if err != nil {
			t.Fatalf("scanner accepts what encoding/xml rejects (%v): %q", err, data)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("events differ (-encoding/xml +scanner):\n%s\ninput %q", diff, data)
		}
	})
}
