// Command portholder holds ports for Berth's tests: a real, separate process
// whose pid and name a finding must report. It binds every address given,
// prints "ready" and the bound addresses, and exits when stdin closes.
//
//	portholder -tcp 127.0.0.1:8554 -tcp [::]:8555 -udp 0.0.0.0:10000 -reply 'RTSP/1.0 200 OK\r\nServer: FakeCam\r\n\r\n'
//
// With -reply, each TCP connection that sends a request (a first line)
// gets the reply and is closed; without it, connections are accepted and
// left silent.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var tcps, tcp4s, tcp6s, udps list
	flag.Var(&tcps, "tcp", "TCP address to listen on (\"tcp\": [::] and 0.0.0.0 are dual-stack)")
	flag.Var(&tcp4s, "tcp4", "TCP address to listen on IPv4 only")
	flag.Var(&tcp6s, "tcp6", "TCP address to listen on IPv6 only")
	flag.Var(&udps, "udp", "UDP address to bind")
	reply := flag.String("reply", "", "bytes to answer each request with (Go escapes like \\r\\n allowed)")
	flag.Parse()
	r := strings.NewReplacer(`\r`, "\r", `\n`, "\n").Replace(*reply)
	var addrs []string
	listen := func(network, a string) {
		l, err := net.Listen(network, a)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		addrs = append(addrs, l.Addr().String())
		go serve(l, r)
	}
	for _, a := range tcps {
		listen("tcp", a)
	}
	for _, a := range tcp4s {
		listen("tcp4", a)
	}
	for _, a := range tcp6s {
		listen("tcp6", a)
	}
	for _, a := range udps {
		c, err := net.ListenPacket("udp", a)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		addrs = append(addrs, c.LocalAddr().String())
	}
	fmt.Println("ready", strings.Join(addrs, " "))
	io.Copy(io.Discard, os.Stdin)
}

func serve(l net.Listener, reply string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			if reply == "" {
				io.Copy(io.Discard, c) // hold the connection, answer nothing
				c.Close()
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			if _, err := br.ReadString('\n'); err != nil {
				return
			}
			c.Write([]byte(reply))
		}()
	}
}
