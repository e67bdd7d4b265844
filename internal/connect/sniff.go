package connect

import (
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// maxKafkaFrame is the largest response size consentd believes: a Kafka
// response starts with its size (a big-endian int32), and no broker sends
// 256 MiB in one response (fetch.max.bytes defaults to 50 MiB). Text
// protocols start with a printable byte, which reads as at least 512 MiB.
const maxKafkaFrame = 256 << 20

// NotKafkaError says that the peer at a broker address answered with bytes
// that are not a Kafka response (an HTTP server, a Redis port).
type NotKafkaError struct {
	// Addr is the address dialled.
	Addr string
	// HTTP is set when the answer starts like an HTTP response, TLS when
	// it is a TLS record (a TLS listener dialled in plaintext).
	HTTP, TLS bool
	// Head are the first bytes the peer sent.
	Head []byte
}

func (e *NotKafkaError) Error() string {
	return fmt.Sprintf("not a Kafka response: the first bytes from %s are %q", e.Addr, e.Head)
}

// sniffConn checks the first bytes a broker sends, so that a wrong port
// fails at once with a NotKafkaError instead of kafka-go reading a
// gigabyte-sized "frame" until its deadline.
type sniffConn struct {
	net.Conn
	addr string
	// frames: the stream carries Kafka frames directly (no TLS), so the
	// first four bytes are a response size.
	frames bool

	// checked is set once the first bytes passed: later reads go
	// straight through.
	checked atomic.Bool
	mu      sync.Mutex
	n       int
	head    [4]byte
	err     error
}

func (c *sniffConn) Read(p []byte) (int, error) {
	if c.checked.Load() {
		return c.Conn.Read(p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	n, rerr := c.Conn.Read(p)
	if n == 0 {
		return n, rerr
	}
	c.n += copy(c.head[c.n:], p[:n])
	if c.n < len(c.head) {
		return n, rerr
	}
	head := append([]byte(nil), c.head[:]...)
	if string(head) == "HTTP" {
		c.err = &NotKafkaError{Addr: c.addr, HTTP: true, Head: head}
	} else if c.frames && (head[0] == 0x15 || head[0] == 0x16) && head[1] == 3 {
		c.err = &NotKafkaError{Addr: c.addr, TLS: true, Head: head}
	} else if size := int32(binary.BigEndian.Uint32(c.head[:])); c.frames && (size < 0 || size > maxKafkaFrame) {
		c.err = &NotKafkaError{Addr: c.addr, Head: head}
	}
	if c.err != nil {
		return 0, c.err
	}
	c.checked.Store(true)
	return n, rerr
}
