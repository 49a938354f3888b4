package s3

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	smithytime "github.com/aws/smithy-go/time"
	"github.com/orisano/gosax"
)

// errDecline is the fast path's answer to a document it leaves to the SDK.
var errDecline = errors.New("not decoded on the fast path")

func decline(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errDecline}, args...)...)
}

// xmlDoc reads an S3 answer document the way the SDK's decoders (on
// encoding/xml) read it, or declines it: see fastdecode.go. A document
// with anything it is not certain to read exactly as they would is
// declined: a comment, CDATA, a processing instruction other than the XML
// declaration, a namespace prefix, an attribute other than the root's
// xmlns, an entity other than XML's five and character references, text
// that is not valid XML 1.0 (or "]]>"), a malformed tag, a value with
// child elements.
type xmlDoc struct {
	in bytes.Reader // the answer's body
	r  *gosax.Reader
	// text is the value of the leaf being read.
	text []byte
	// names holds the names of the open elements, root first: the
	// tokenizer's bytes are only good until its next event.
	names [maxDepth][maxName]byte
	depth int
}

// The fast path declines deeper documents and longer names: a listing has
// three levels and names of up to 21 bytes.
const (
	maxDepth = 8
	maxName  = 64
)

// open keeps name as the name of the element just started, one level down,
// and returns the copy.
func (d *xmlDoc) open(name []byte) ([]byte, error) {
	if d.depth == maxDepth || len(name) > maxName {
		return nil, decline("element %.40q at depth %d", name, d.depth)
	}
	n := copy(d.names[d.depth][:], name)
	d.depth++
	return d.names[d.depth-1][:n], nil
}

func (d *xmlDoc) close() { d.depth-- }

// event returns the next event; io.EOF at the end of the input.
func (d *xmlDoc) event() (gosax.Event, error) {
	e, err := d.r.Event()
	if err != nil {
		return e, decline("tokenize: %v", err)
	}
	if e.Type() == gosax.EventEOF {
		return e, io.EOF
	}
	return e, nil
}

// children reads the content of element parent (its start read) up to its
// end, calling child with the name of each child element, its start read;
// child must read the child up to its end. Text between children must be
// white space.
func (d *xmlDoc) children(parent []byte, child func(name []byte) error) error {
	for {
		e, err := d.event()
		if err == io.EOF {
			return decline("the input ends inside %s", parent)
		}
		if err != nil {
			return err
		}
		switch e.Type() {
		case gosax.EventText:
			if !isSpace(e.Bytes) {
				return decline("text inside %s", parent)
			}
		case gosax.EventStart:
			name, err := elemName(e.Bytes)
			if err != nil {
				return err
			}
			if name, err = d.open(name); err != nil {
				return err
			}
			err = child(name)
			d.close()
			if err != nil {
				return err
			}
		case gosax.EventEnd:
			return endOf(e.Bytes, parent)
		default:
			return decline("markup %.40q inside %s", e.Bytes, parent)
		}
	}
}

// skip reads element name (its start read) up to its end.
func (d *xmlDoc) skip(name []byte) error {
	for {
		e, err := d.event()
		if err == io.EOF {
			return decline("the input ends inside %s", name)
		}
		if err != nil {
			return err
		}
		switch e.Type() {
		case gosax.EventText:
			if err := d.setText(e.Bytes); err != nil {
				return err
			}
		case gosax.EventStart:
			child, err := elemName(e.Bytes)
			if err != nil {
				return err
			}
			if child, err = d.open(child); err != nil {
				return err
			}
			err = d.skip(child)
			d.close()
			if err != nil {
				return err
			}
		case gosax.EventEnd:
			return endOf(e.Bytes, name)
		default:
			return decline("markup %.40q inside %s", e.Bytes, name)
		}
	}
}

// value reads the text of leaf element name (its start read) up to its
// end: "" for an empty element. A leaf with anything but one text in it is
// declined (the SDK fails it, or reads it differently).
func (d *xmlDoc) value(name []byte) (string, error) {
	e, err := d.event()
	if err != nil {
		return "", eofIn(err, name)
	}
	switch e.Type() {
	case gosax.EventEnd:
		return "", endOf(e.Bytes, name)
	case gosax.EventText:
	default:
		return "", decline("markup %.40q inside %s", e.Bytes, name)
	}
	if err := d.setText(e.Bytes); err != nil {
		return "", err
	}
	v := string(d.text)
	e, err = d.event()
	if err != nil {
		return "", eofIn(err, name)
	}
	if e.Type() != gosax.EventEnd {
		return "", decline("markup %.40q inside %s", e.Bytes, name)
	}
	return v, endOf(e.Bytes, name)
}

func eofIn(err error, name []byte) error {
	if err == io.EOF {
		return decline("the input ends inside %s", name)
	}
	return err
}

func (d *xmlDoc) str(name []byte, p **string) error {
	v, err := d.value(name)
	if err != nil {
		return err
	}
	*p = &v
	return nil
}

func (d *xmlDoc) boolean(name []byte, p **bool) error {
	v, err := d.value(name)
	if err != nil {
		return err
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return decline("%s %q", name, v)
	}
	*p = &b
	return nil
}

func (d *xmlDoc) int32(name []byte, p **int32) error {
	v, err := d.value(name)
	if err != nil {
		return err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return decline("%s %q", name, v)
	}
	*p = aws.Int32(int32(n)) // as the SDK: no range check
	return nil
}

func (d *xmlDoc) timestamp(name []byte, p **time.Time) error {
	v, err := d.value(name)
	if err != nil {
		return err
	}
	t, err := smithytime.ParseDateTime(v)
	if err != nil {
		return decline("%s %q", name, v)
	}
	*p = &t
	return nil
}

// setText sets d.text to raw character data decoded as encoding/xml
// decodes it: the five predefined entities and character references
// replaced, CR LF and lone CR turned into LF. Data that is not UTF-8, a
// character XML 1.0 does not allow, or an entity other than those, is
// declined.
func (d *xmlDoc) setText(raw []byte) error {
	d.text = d.text[:0]
	if bytes.Contains(raw, []byte("]]>")) {
		return decline("]]> in text")
	}
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '&':
			end := bytes.IndexByte(raw[i:min(len(raw), i+16)], ';')
			if end < 0 {
				return decline("entity in %.40q", raw)
			}
			r, ok := entity(raw[i+1 : i+end])
			if !ok {
				return decline("entity %q", raw[i:i+end+1])
			}
			d.text = utf8.AppendRune(d.text, r)
			i += end + 1
		case c == '\r':
			d.text = append(d.text, '\n')
			i++
			if i < len(raw) && raw[i] == '\n' {
				i++
			}
		case c == '\t' || c == '\n' || (c >= 0x20 && c < utf8.RuneSelf):
			d.text = append(d.text, c)
			i++
		case c < 0x20:
			return decline("control character %#x", c)
		default:
			r, n := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && n == 1 || !xmlChar(r) {
				return decline("character %q", raw[i:i+n])
			}
			d.text = append(d.text, raw[i:i+n]...)
			i += n
		}
	}
	return nil
}

// entity returns the character of entity reference "&ref;", for the five
// predefined entities and character references that encoding/xml reads.
func entity(ref []byte) (rune, bool) {
	switch string(ref) {
	case "lt":
		return '<', true
	case "gt":
		return '>', true
	case "amp":
		return '&', true
	case "apos":
		return '\'', true
	case "quot":
		return '"', true
	}
	if len(ref) < 2 || ref[0] != '#' {
		return 0, false
	}
	base, digits := 10, ref[1:]
	if digits[0] == 'x' {
		base, digits = 16, digits[1:]
	}
	if len(digits) == 0 {
		return 0, false
	}
	for _, c := range digits { // ParseUint would take "_" and a sign
		if !(c >= '0' && c <= '9' || base == 16 && (c|0x20 >= 'a' && c|0x20 <= 'f')) {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(string(digits), base, 32)
	if err != nil || !xmlChar(rune(n)) {
		return 0, false
	}
	return rune(n), true
}

// xmlChar reports whether XML 1.0 allows character r.
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

func isSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

// fold reports whether element name is want, case aside (the SDK matches
// names with strings.EqualFold).
func fold(name []byte, want string) bool {
	return len(name) == len(want) && strings.EqualFold(string(name), want)
}

// simpleName reports whether b is a name the fast path reads: ASCII
// letters, digits, '_', '-' and '.', not starting with a digit, '-' or '.'
// (no namespace prefix).
func simpleName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == '_':
		case (c >= '0' && c <= '9' || c == '-' || c == '.') && i > 0:
		default:
			return false
		}
	}
	return true
}

// elemName returns the name of a start tag ("<Name>" or "<Name/>") that
// has no attributes.
func elemName(tag []byte) ([]byte, error) {
	inner, ok := tagInner(tag, "<")
	if !ok {
		return nil, decline("tag %.40q", tag)
	}
	inner = bytes.TrimSuffix(inner, []byte("/"))
	inner = bytes.TrimRight(inner, " \t\r\n")
	if !simpleName(inner) {
		return nil, decline("tag %.40q", tag)
	}
	return inner, nil
}

// rootName returns the name of the root's start tag, which may declare the
// default namespace (xmlns="...", the one attribute servers send).
func (d *xmlDoc) rootName(tag []byte) ([]byte, error) {
	inner, ok := tagInner(tag, "<")
	if !ok || bytes.HasSuffix(inner, []byte("/")) {
		return nil, decline("root tag %.40q", tag)
	}
	name, attrs, _ := bytes.Cut(inner, []byte(" "))
	if !simpleName(name) {
		return nil, decline("root tag %.40q", tag)
	}
	attrs = bytes.TrimRight(attrs, " \t\r\n")
	if len(attrs) == 0 {
		return name, nil
	}
	v, ok := bytes.CutPrefix(attrs, []byte(`xmlns="`))
	if !ok || len(v) == 0 || v[len(v)-1] != '"' || bytes.ContainsAny(v[:len(v)-1], "\"<&\t\r\n") {
		return nil, decline("root tag %.40q", tag)
	}
	if err := d.setText(v[:len(v)-1]); err != nil { // UTF-8, XML characters
		return nil, err
	}
	return name, nil
}

// endOf checks that tag is the end tag of element name: "</name>", or
// "<name/>" again (the tokenizer gives a self-closing tag as the start and
// as the end).
func endOf(tag, name []byte) error {
	if !bytes.HasPrefix(tag, []byte("</")) && bytes.HasSuffix(tag, []byte("/>")) {
		if n, err := elemName(tag); err == nil && bytes.Equal(n, name) {
			return nil
		}
		return decline("end tag %.40q for %s", tag, name)
	}
	inner, ok := tagInner(tag, "</")
	if !ok || !bytes.Equal(bytes.TrimRight(inner, " \t\r\n"), name) {
		return decline("end tag %.40q for %s", tag, name)
	}
	return nil
}

// tagInner returns what is between open and ">" in tag.
func tagInner(tag []byte, open string) ([]byte, bool) {
	inner, ok := bytes.CutPrefix(tag, []byte(open))
	if !ok {
		return nil, false
	}
	return bytes.CutSuffix(inner, []byte(">"))
}

// xmlDecl reports whether pi is an XML declaration that encoding/xml reads
// as this one would: version 1.0 and, when named, encoding UTF-8.
func xmlDecl(pi []byte) bool {
	switch string(pi) {
	case `<?xml version="1.0" encoding="UTF-8"?>`, `<?xml version="1.0" encoding="utf-8"?>`,
		`<?xml version="1.0"?>`, `<?xml version='1.0' encoding='UTF-8'?>`:
		return true
	}
	return false
}

// xmlDocs holds readers between answers (one per object on a copy): the
// tokenizer's buffer, the body's reader and the name stack are reused. The
// buffer may move as it grows: what is kept across events is copied out of
// it (names by open, text by setText).
var xmlDocs = sync.Pool{New: func() any {
	d := &xmlDoc{}
	d.r = gosax.NewReaderBuf(&d.in, make([]byte, 0, 4096))
	return d
}}

// readDocument reads body as the SDK's decoders do: up to the first start
// tag, the root, whose children root reads (d positioned after the root's
// start tag, root its name); what follows the root is not read. A body
// with no root is a document without content (root is not called). Any
// error wraps errDecline. It never panics: a panic in the tokenizer is a
// decline too.
func readDocument(body []byte, root func(d *xmlDoc, name []byte) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = decline("tokenizer panic: %v", r)
		}
	}()
	d := xmlDocs.Get().(*xmlDoc)
	defer xmlDocs.Put(d)
	d.in.Reset(body)
	d.r.Reset(&d.in)
	d.r.EmitSelfClosingTag = true // after Reset, which clears it
	d.depth, d.text = 0, d.text[:0]
	// Before the root: white space and at most one XML declaration, first.
	for first := true; ; first = false {
		e, err := d.event()
		if err == io.EOF {
			return nil // no root: the SDK answers an empty output too
		}
		if err != nil {
			return err
		}
		switch e.Type() {
		case gosax.EventText:
			if !isSpace(e.Bytes) {
				return decline("text before the root element")
			}
		case gosax.EventProcessingInstruction:
			if !first || !xmlDecl(e.Bytes) {
				return decline("processing instruction %.40q", e.Bytes)
			}
		case gosax.EventStart:
			name, err := d.rootName(e.Bytes)
			if err != nil {
				return err
			}
			if name, err = d.open(name); err != nil {
				return err
			}
			return root(d, name)
		default:
			return decline("markup %.40q before the root element", e.Bytes)
		}
	}
}
