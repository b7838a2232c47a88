package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/handlers"
	"github.com/tollgate/tollgate/settings"
)

// jsonErrorsListener makes net/http's own early refusals JSON. A request
// the server cannot parse (a bad URL such as "GET /%", headers past
// MaxHeaderBytes, a missing Host, an unknown transfer encoding) is answered
// by net/http before any handler runs, as plain text written straight to
// the connection in one Write, and no option changes that. This wrapper
// recognises exactly that write and sends the API's error shape instead.
type jsonErrorsListener struct{ net.Listener }

func (l jsonErrorsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &jsonErrorsConn{Conn: c}, nil
}

type jsonErrorsConn struct{ net.Conn }

// The headers net/http writes on its early refusals, in this order, with
// nothing after them: a handler's answer always carries a Date header
// after Connection, so it never matches.
const plainErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

func (c *jsonErrorsConn) Write(p []byte) (int, error) {
	if rewritten, ok := jsonRefusal(p); ok {
		if _, err := c.Conn.Write(rewritten); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// CloseWrite keeps net/http's graceful close (it half-closes TCP after a
// refusal so the client reads the answer before the reset).
func (c *jsonErrorsConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// jsonRefusal turns "HTTP/1.1 400 Bad Request: detail<headers>body" into
// the same status with a JSON ErrorResponse body.
func jsonRefusal(p []byte) ([]byte, bool) {
	const proto = "HTTP/1.1 "
	if len(p) < len(proto)+3 || !bytes.HasPrefix(p, []byte(proto)) || p[len(proto)] < '4' {
		return nil, false
	}
	statusLine, _, found := bytes.Cut(p[len(proto):], []byte(plainErrorHeaders))
	if !found {
		return nil, false
	}
	code, err := strconv.Atoi(string(statusLine[:3]))
	if err != nil || code < 400 || code > 599 {
		return nil, false
	}
	text := http.StatusText(code)
	message := "The request could not be read: " + strings.ToLower(text[:1]) + text[1:] + "."
	if _, detail, ok := strings.Cut(string(statusLine), ": "); ok {
		message = "The request could not be read: " + detail + "."
	}
	body, _ := json.Marshal(handlers.ErrorResponse{Error: message, Code: refusalCode(code)})
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%sConnection: close\r\n\r\n", code, text, len(body), refusalHeaders)
	b.Write(body)
	return b.Bytes(), true
}

// refusalHeaders are the security headers of every other answer (the same
// SecureConfig; HSTS aside: nothing is known yet of how the request came),
// and no-store.
var refusalHeaders = func() string {
	sc := secureConfig(settings.Config{})
	var b strings.Builder
	for _, h := range [][2]string{
		{"X-XSS-Protection", sc.XSSProtection}, {"X-Content-Type-Options", sc.ContentTypeNosniff}, {"X-Frame-Options", sc.XFrameOptions},
		{"Content-Security-Policy", sc.ContentSecurityPolicy}, {"Referrer-Policy", sc.ReferrerPolicy}, {"Cache-Control", "no-store"},
	} {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	return b.String()
}()

func refusalCode(status int) string {
	switch status {
	case http.StatusRequestHeaderFieldsTooLarge:
		return "headers_too_large"
	case http.StatusNotImplemented:
		return "not_implemented"
	case http.StatusHTTPVersionNotSupported:
		return "http_version_not_supported"
	default:
		return "malformed_request"
	}
}
