package main

import (
	"encoding/binary"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"
)

// maxDelimited bounds one message from the runner; a ServerCompatRequest
// carries a certificate and key, a few KiB.
const maxDelimited = 1 << 20

// readDelimited reads one message as the runner frames it: a 32-bit
// big-endian length, then that many bytes of binary protobuf.
func readDelimited(r io.Reader, msg proto.Message) error {
	var prefix [4]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(prefix[:])
	if n > maxDelimited {
		return fmt.Errorf("message of %d bytes; at most %d expected", n, maxDelimited)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r, data); err != nil {
		return err
	}
	return proto.Unmarshal(data, msg)
}

// writeDelimited writes msg framed as readDelimited reads it.
func writeDelimited(w io.Writer, msg proto.Message) error {
	data, err := proto.Marshal(msg)
	if err != nil {
		return err
	}
	framed := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(data)), uint32(len(data)))
	_, err = w.Write(append(framed, data...))
	return err
}
