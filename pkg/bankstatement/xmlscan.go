package bankstatement

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// xmlScanner is a pull tokenizer for the subset of XML that ISO 20022
// messages use: elements, attributes, namespaces, character data with the
// predefined and numeric character references, CDATA sections, comments and
// processing instructions. It exists because encoding/xml allocates for every
// token and runs at about 25 MB/s, which puts a 100,000-entry statement at
// two seconds; this scanner works on the in-memory document, returns names
// and text as sub-slices of it and allocates almost nothing.
//
// It is deliberately stricter than encoding/xml, never more lenient — every
// document it accepts, encoding/xml in strict mode accepts with the same
// elements, namespaces and text (FuzzXMLScanner checks this):
//   - no DOCTYPE or any other markup declaration (ErrForbiddenDTD), hence no
//     entities beyond &lt; &gt; &amp; &apos; &quot; and character references;
//   - names are ASCII, with at most one colon; an undeclared prefix is an
//     error rather than passed through;
//   - duplicate attributes, "--" inside comments, an XML declaration that is
//     not at the start, text or a second element after the root are errors;
//   - the whole document must be valid UTF-8 made of XML characters.
type xmlScanner struct {
	data  []byte
	pos   int
	stack []openElem
	nsb   []nsBinding // in-scope namespace bindings, innermost last

	// The current token.
	kind  tokKind
	local []byte // start/end element: local name
	space string // start/end element: namespace URI
	attrs []xmlAttr
	text  []byte // character data: raw (references not decoded) or CDATA
	cdata bool

	lineAt, lineOf int // lineOfPos cache

	pendingEnd bool // the start element was <x/>: its end comes next
	rootDone   bool // the root element has been closed
	sawMarkup  bool // anything but whitespace has been read
	buf        []byte
}

type tokKind uint8

const (
	tokNone tokKind = iota
	tokStart
	tokEnd
	tokText
	tokEOF
)

type openElem struct {
	qname  []byte
	local  []byte
	space  string
	nsMark int // len(nsb) before this element's declarations
}

type nsBinding struct{ prefix, uri string }

type xmlAttr struct {
	prefix, local, value []byte
	hasRef               bool
}

const (
	xmlNamespace = "http://www.w3.org/XML/1998/namespace"
	maxXMLAttrs  = 32
)

// xmlError is a scanner error at a byte offset; the camt parser turns it into
// a ParseError with line and column.
type xmlError struct {
	pos    int
	reason string
	dtd    bool
}

func (e *xmlError) Error() string { return e.reason }

func newXMLScanner(data []byte) (*xmlScanner, error) {
	if err := checkXMLChars(data); err != nil {
		return nil, err
	}
	return &xmlScanner{data: data}, nil
}

func (s *xmlScanner) fail(pos int, format string, args ...any) error {
	return &xmlError{pos: pos, reason: fmt.Sprintf(format, args...)}
}

// position converts a byte offset to a 1-based line and column (in bytes),
// for error messages.
func (s *xmlScanner) position(pos int) (line, col int) {
	line = s.lineOfPos(pos)
	pos = min(pos, len(s.data))
	col = pos - bytes.LastIndexByte(s.data[:pos], '\n')
	return line, col
}

// lineOfPos converts a byte offset to a 1-based line number. Entries ask in
// document order, so counting on from the previous answer keeps the total
// work linear in the document size (a minified document is one long line).
func (s *xmlScanner) lineOfPos(pos int) int {
	pos = min(pos, len(s.data))
	if pos < s.lineAt || s.lineOf == 0 {
		s.lineAt, s.lineOf = 0, 1
	}
	line := s.lineOf + bytes.Count(s.data[s.lineAt:pos], []byte("\n"))
	s.lineAt, s.lineOf = pos, line
	return line
}

// checkXMLChars rejects invalid UTF-8 and code points XML does not allow
// (control characters, U+FFFE, U+FFFF) anywhere in the document, once,
// so that nothing later has to.
func checkXMLChars(data []byte) error {
	for i := 0; i < len(data); {
		c := data[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return &xmlError{pos: i, reason: fmt.Sprintf("illegal character U+%04X", c)}
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 {
			return &xmlError{pos: i, reason: "invalid UTF-8"}
		}
		if r == 0xFFFE || r == 0xFFFF {
			return &xmlError{pos: i, reason: fmt.Sprintf("illegal character U+%04X", r)}
		}
		i += size
	}
	return nil
}

func isNameStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func isNameByte(c byte) bool {
	return isNameStart(c) || c >= '0' && c <= '9' || c == '-' || c == '.'
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (s *xmlScanner) skipSpace() {
	for s.pos < len(s.data) && isSpace(s.data[s.pos]) {
		s.pos++
	}
}

// qname reads an ASCII name with an optional single prefix.
func (s *xmlScanner) qname() (qname, prefix, local []byte, err error) {
	start := s.pos
	colon := -1
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		if c == ':' {
			if colon >= 0 {
				return nil, nil, nil, s.fail(s.pos, "invalid name: more than one ':'")
			}
			colon = s.pos
		} else if !isNameByte(c) {
			break
		}
		s.pos++
	}
	q := s.data[start:s.pos]
	switch {
	case len(q) == 0:
		return nil, nil, nil, s.fail(start, "expected a name")
	case !isNameStart(q[0]):
		return nil, nil, nil, s.fail(start, "invalid name %q", clip(string(q)))
	case colon < 0:
		return q, nil, q, nil
	case colon == start || colon == s.pos-1 || !isNameStart(s.data[colon+1]):
		return nil, nil, nil, s.fail(start, "invalid name %q", clip(string(q)))
	}
	return q, s.data[start:colon], s.data[colon+1 : s.pos], nil
}

func (s *xmlScanner) lookupNS(prefix []byte) (string, bool) {
	for i := len(s.nsb) - 1; i >= 0; i-- {
		if s.nsb[i].prefix == string(prefix) {
			return s.nsb[i].uri, true
		}
	}
	if len(prefix) == 0 {
		return "", true
	}
	if string(prefix) == "xml" {
		return xmlNamespace, true
	}
	return "", false
}

// next advances to the next element start, element end or piece of
// character data inside the root element. Comments and processing
// instructions are skipped; whitespace outside the root is dropped.
func (s *xmlScanner) next() error {
	if s.pendingEnd {
		s.pendingEnd = false
		s.pop()
		return nil
	}
	for {
		if s.pos >= len(s.data) {
			if len(s.stack) > 0 {
				top := s.stack[len(s.stack)-1]
				return s.fail(s.pos, "unexpected end of document: <%s> is not closed", clip(string(top.qname)))
			}
			if !s.rootDone {
				return s.fail(s.pos, "XML document has no root element")
			}
			s.kind = tokEOF
			return nil
		}
		if s.data[s.pos] != '<' {
			start := s.pos
			end := bytes.IndexByte(s.data[s.pos:], '<')
			if end < 0 {
				end = len(s.data)
			} else {
				end += s.pos
			}
			seg := s.data[start:end]
			s.pos = end
			if len(s.stack) == 0 {
				if len(bytes.TrimLeft(seg, " \t\r\n")) != 0 {
					return s.fail(start, "text outside the root element")
				}
				continue
			}
			if i := bytes.Index(seg, []byte("]]>")); i >= 0 {
				return s.fail(start+i, "\"]]>\" outside a CDATA section")
			}
			if err := s.checkRefs(seg, start); err != nil {
				return err
			}
			s.kind, s.text, s.cdata = tokText, seg, false
			return nil
		}
		rest := s.data[s.pos:]
		switch {
		case bytes.HasPrefix(rest, []byte("<?")):
			if err := s.procInst(); err != nil {
				return err
			}
			s.sawMarkup = true
		case bytes.HasPrefix(rest, []byte("<!--")):
			end := bytes.Index(rest[4:], []byte("--"))
			if end < 0 {
				return s.fail(s.pos, "unterminated comment")
			}
			if !bytes.HasPrefix(rest[4+end:], []byte("-->")) {
				return s.fail(s.pos+4+end, "\"--\" inside a comment")
			}
			s.pos += 4 + end + 3
			s.sawMarkup = true
		case bytes.HasPrefix(rest, []byte("<![CDATA[")):
			if len(s.stack) == 0 {
				return s.fail(s.pos, "CDATA section outside the root element")
			}
			end := bytes.Index(rest[9:], []byte("]]>"))
			if end < 0 {
				return s.fail(s.pos, "unterminated CDATA section")
			}
			s.kind, s.text, s.cdata = tokText, rest[9:9+end], true
			s.pos += 9 + end + 3
			return nil
		case bytes.HasPrefix(rest, []byte("<!")):
			kw := rest[2:]
			n := 0
			for n < len(kw) && n < 16 && (kw[n] >= 'A' && kw[n] <= 'Z' || kw[n] >= 'a' && kw[n] <= 'z') {
				n++
			}
			return &xmlError{pos: s.pos, dtd: true, reason: fmt.Sprintf("<!%s: markup declarations are refused (DOCTYPE, DTD, ENTITY); camt messages never carry one, and they enable entity expansion bombs and external entity reads", kw[:n])}
		case bytes.HasPrefix(rest, []byte("</")):
			return s.endTag()
		default:
			return s.startTag()
		}
	}
}

func (s *xmlScanner) procInst() error {
	start := s.pos
	s.pos += 2
	target, _, _, err := s.qname()
	if err != nil {
		return err
	}
	end := bytes.Index(s.data[s.pos:], []byte("?>"))
	if end < 0 {
		return s.fail(start, "unterminated processing instruction")
	}
	body := s.data[s.pos : s.pos+end]
	s.pos += end + 2
	if len(body) > 0 && !isSpace(body[0]) {
		return s.fail(start, "invalid processing instruction target")
	}
	if !strings.EqualFold(string(target), "xml") {
		return nil
	}
	// Strictly the declaration must be the very first bytes; a blank line
	// before it is tolerated because it changes nothing.
	if s.sawMarkup || string(target) != "xml" {
		return s.fail(start, "XML declaration not at the start of the document")
	}
	content := string(body)
	if v := pseudoAttr(content, "version"); v != "" && v != "1.0" {
		return s.fail(start, "unsupported XML version %q", clip(v))
	}
	if enc := pseudoAttr(content, "encoding"); enc != "" && !strings.EqualFold(enc, "utf-8") {
		return s.fail(start, "encoding %q is not supported: camt messages are UTF-8", clip(enc))
	}
	return nil
}

// pseudoAttr finds name="value" (or 'value') in an XML declaration, the way
// encoding/xml does.
func pseudoAttr(content, name string) string {
	for {
		i := strings.Index(content, name)
		if i < 0 {
			return ""
		}
		content = content[i+len(name):]
		rest := strings.TrimLeft(content, " \t\r\n")
		if !strings.HasPrefix(rest, "=") {
			continue
		}
		rest = strings.TrimLeft(rest[1:], " \t\r\n")
		if rest == "" || rest[0] != '"' && rest[0] != '\'' {
			return ""
		}
		q := rest[0]
		if j := strings.IndexByte(rest[1:], q); j >= 0 {
			return rest[1 : 1+j]
		}
		return ""
	}
}

func (s *xmlScanner) startTag() error {
	start := s.pos
	if s.rootDone {
		return s.fail(start, "content after the root element")
	}
	s.sawMarkup = true
	if len(s.stack) >= maxXMLDepth {
		return s.fail(start, "elements nested deeper than %d levels", maxXMLDepth)
	}
	s.pos++
	qname, prefix, local, err := s.qname()
	if err != nil {
		return err
	}
	s.attrs = s.attrs[:0]
	mark := len(s.nsb)
	self := false
	for {
		hadSpace := s.pos < len(s.data) && isSpace(s.data[s.pos])
		s.skipSpace()
		if s.pos >= len(s.data) {
			return s.fail(start, "unterminated start tag <%s", clip(string(qname)))
		}
		if c := s.data[s.pos]; c == '>' || c == '/' {
			if c == '/' {
				if s.pos+1 >= len(s.data) || s.data[s.pos+1] != '>' {
					return s.fail(s.pos, "expected /> in <%s", clip(string(qname)))
				}
				s.pos++
				self = true
			}
			s.pos++
			break
		}
		if !hadSpace {
			return s.fail(s.pos, "expected whitespace before an attribute in <%s", clip(string(qname)))
		}
		if len(s.attrs) == maxXMLAttrs {
			// The duplicate check below is quadratic; ISO 20022 elements
			// carry one or two attributes.
			return s.fail(start, "more than %d attributes in <%s>", maxXMLAttrs, clip(string(qname)))
		}
		aq, ap, al, err := s.qname()
		if err != nil {
			return err
		}
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != '=' {
			return s.fail(s.pos, "attribute %s has no value", clip(string(aq)))
		}
		s.pos++
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' && s.data[s.pos] != '\'' {
			return s.fail(s.pos, "attribute %s: value must be quoted", clip(string(aq)))
		}
		q := s.data[s.pos]
		vstart := s.pos + 1
		vend := bytes.IndexByte(s.data[vstart:], q)
		if vend < 0 {
			return s.fail(s.pos, "unterminated attribute value")
		}
		val := s.data[vstart : vstart+vend]
		s.pos = vstart + vend + 1
		if bytes.IndexByte(val, '<') >= 0 {
			return s.fail(vstart, "'<' in attribute value")
		}
		if err := s.checkRefs(val, vstart); err != nil {
			return err
		}
		for _, a := range s.attrs {
			if bytes.Equal(a.prefix, ap) && bytes.Equal(a.local, al) {
				return s.fail(start, "duplicate attribute %s", clip(string(aq)))
			}
		}
		hasRef := bytes.IndexByte(val, '&') >= 0
		s.attrs = append(s.attrs, xmlAttr{prefix: ap, local: al, value: val, hasRef: hasRef})
		// Namespace declarations take effect for this element's own name.
		switch {
		case ap == nil && string(al) == "xmlns":
			s.nsb = append(s.nsb, nsBinding{"", s.attrString(val, hasRef)})
		case string(ap) == "xmlns":
			uri := s.attrString(val, hasRef)
			if uri == "" || string(al) == "xmlns" || string(al) == "xml" {
				return s.fail(start, "invalid namespace declaration %s", clip(string(aq)))
			}
			s.nsb = append(s.nsb, nsBinding{string(al), uri})
		}
	}
	space, ok := s.lookupNS(prefix)
	if !ok {
		return s.fail(start, "undeclared namespace prefix %q", clip(string(prefix)))
	}
	for _, a := range s.attrs {
		if len(a.prefix) > 0 && string(a.prefix) != "xmlns" {
			if _, ok := s.lookupNS(a.prefix); !ok {
				return s.fail(start, "undeclared namespace prefix %q", clip(string(a.prefix)))
			}
		}
	}
	s.stack = append(s.stack, openElem{qname: qname, local: local, space: space, nsMark: mark})
	s.kind, s.local, s.space = tokStart, local, space
	s.pendingEnd = self
	return nil
}

func (s *xmlScanner) endTag() error {
	start := s.pos
	s.pos += 2
	qname, _, _, err := s.qname()
	if err != nil {
		return err
	}
	s.skipSpace()
	if s.pos >= len(s.data) || s.data[s.pos] != '>' {
		return s.fail(s.pos, "invalid characters in end tag </%s", clip(string(qname)))
	}
	s.pos++
	if len(s.stack) == 0 {
		return s.fail(start, "end tag </%s> without a start tag", clip(string(qname)))
	}
	if top := s.stack[len(s.stack)-1]; !bytes.Equal(top.qname, qname) {
		return s.fail(start, "end tag </%s> does not match <%s>", clip(string(qname)), clip(string(top.qname)))
	}
	s.pop()
	return nil
}

// pop closes the innermost element and makes its end the current token.
func (s *xmlScanner) pop() {
	top := s.stack[len(s.stack)-1]
	s.stack = s.stack[:len(s.stack)-1]
	s.nsb = s.nsb[:top.nsMark]
	s.kind, s.local, s.space = tokEnd, top.local, top.space
	if len(s.stack) == 0 {
		s.rootDone = true
	}
}

// checkRefs verifies that every '&' in raw starts a reference XML defines
// without a DTD.
func (s *xmlScanner) checkRefs(raw []byte, base int) error {
	for i := 0; ; {
		j := bytes.IndexByte(raw[i:], '&')
		if j < 0 {
			return nil
		}
		i += j
		_, n, ok := decodeRef(raw[i:])
		if !ok {
			end := bytes.IndexByte(raw[i:], ';')
			if end < 0 || end > 12 {
				end = min(12, len(raw)-i)
			} else {
				end++
			}
			return s.fail(base+i, "invalid or undefined entity reference %q", string(raw[i:i+end]))
		}
		i += n
	}
}

// decodeRef decodes the reference at the start of b ("&amp;", "&#36;",
// "&#x24;") and returns the rune and the bytes consumed.
func decodeRef(b []byte) (rune, int, bool) {
	end := bytes.IndexByte(b, ';')
	if end < 2 || end > 12 {
		return 0, 0, false
	}
	name := b[1:end]
	switch string(name) {
	case "lt":
		return '<', end + 1, true
	case "gt":
		return '>', end + 1, true
	case "amp":
		return '&', end + 1, true
	case "apos":
		return '\'', end + 1, true
	case "quot":
		return '"', end + 1, true
	}
	if name[0] != '#' || len(name) < 2 {
		return 0, 0, false
	}
	digits, base := name[1:], 10
	if digits[0] == 'x' {
		digits, base = digits[1:], 16
	}
	if len(digits) == 0 || len(digits) > 8 {
		return 0, 0, false
	}
	var r rune
	for _, c := range digits {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case base == 16 && c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case base == 16 && c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, 0, false
		}
		r = r*rune(base) + rune(v)
		if r > 0x10FFFF {
			return 0, 0, false
		}
	}
	if !(r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF) {
		return 0, 0, false
	}
	return r, end + 1, true
}

// appendText appends the decoded form of the current text token: references
// resolved and line ends normalised to "\n", as XML prescribes.
func (s *xmlScanner) appendText(dst []byte) []byte {
	raw := s.text
	if s.cdata {
		return appendNormalized(dst, raw)
	}
	for {
		i := bytes.IndexByte(raw, '&')
		if i < 0 {
			return appendNormalized(dst, raw)
		}
		dst = appendNormalized(dst, raw[:i])
		r, n, _ := decodeRef(raw[i:]) // validated by checkRefs
		dst = utf8.AppendRune(dst, r)
		raw = raw[i+n:]
	}
}

func appendNormalized(dst, b []byte) []byte {
	for {
		i := bytes.IndexByte(b, '\r')
		if i < 0 {
			return append(dst, b...)
		}
		dst = append(dst, b[:i]...)
		dst = append(dst, '\n')
		b = b[i+1:]
		if len(b) > 0 && b[0] == '\n' {
			b = b[1:]
		}
	}
}

// attrString returns an attribute value with references decoded.
func (s *xmlScanner) attrString(val []byte, hasRef bool) string {
	if !hasRef && bytes.IndexByte(val, '\r') < 0 {
		return string(val)
	}
	saved, savedCDATA := s.text, s.cdata
	s.text, s.cdata = val, false
	s.buf = s.appendText(s.buf[:0])
	s.text, s.cdata = saved, savedCDATA
	return string(s.buf)
}

// attr returns the value of the current start element's unprefixed
// attribute with the given name.
func (s *xmlScanner) attr(name string) (string, bool) {
	for _, a := range s.attrs {
		if len(a.prefix) == 0 && string(a.local) == name {
			return s.attrString(a.value, a.hasRef), true
		}
	}
	return "", false
}
