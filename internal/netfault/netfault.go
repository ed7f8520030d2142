//go:build linux

// Package netfault is test support for network faults: network namespaces
// made by a test (ip netns) and links into them whose packets a test can
// delay, drop at random, or stop altogether, while both ends run the
// kernel's real TCP/IP stacks.
//
// tc netem is the usual tool, but the kernels CI and the development
// machines run (Firecracker guests) are built without sch_netem
// (CONFIG_NET_SCH_NETEM is not set: "Specified qdisc kind is unknown").
// So a link here is a pair of TUN devices, one in the root namespace and
// one in the test's namespace, and the wire between them is this package:
// it reads each IP packet from one device and writes it to the other,
// after a delay or not at all, as netem's delay and loss would. A TUN
// device without IFF_VNET_HDR gets whole, checksummed packets (the stack
// segments and checksums them before the device), so no offload has to be
// turned off.
package netfault

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthmedia/berth/internal/testutil"
)

// Require skips the test when it cannot make namespaces (not root, no
// ip, no /dev/net/tun) and CI is unset; with CI set it fails instead.
func Require(t testing.TB) {
	t.Helper()
	why := ""
	switch {
	case os.Geteuid() != 0:
		why = "network namespaces need root: run the test as root (sudo go test ...)"
	default:
		if _, err := exec.LookPath("ip"); err != nil {
			why = "ip (iproute2) not found: apt-get install iproute2"
		} else if _, err := os.Stat("/dev/net/tun"); err != nil {
			why = "/dev/net/tun is missing: a kernel with CONFIG_TUN (modprobe tun)"
		}
	}
	if why != "" {
		testutil.Missing(t, why)
	}
}

var seq atomic.Int32

// NS is a network namespace the test made; it is deleted at the test's end.
type NS struct {
	Name string
}

// NewNS makes a namespace with its loopback up.
func NewNS(t testing.TB) *NS {
	t.Helper()
	sweepStale()
	ns := &NS{Name: fmt.Sprintf("berthf%d-%d", os.Getpid(), seq.Add(1))}
	run(t, "ip", "netns", "add", ns.Name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns.Name).Run() })
	run(t, "ip", "-n", ns.Name, "link", "set", "lo", "up")
	return ns
}

// sweepStale deletes the namespaces of test processes that died without
// their cleanups (a test binary's timeout panic, a kill -9): the name holds
// the pid of the process that made it.
func sweepStale() {
	entries, _ := os.ReadDir("/var/run/netns")
	for _, e := range entries {
		pid, _, ok := strings.Cut(strings.TrimPrefix(e.Name(), "berthf"), "-")
		if !ok || !strings.HasPrefix(e.Name(), "berthf") {
			continue
		}
		if _, err := os.Stat("/proc/" + pid); os.IsNotExist(err) {
			exec.Command("ip", "netns", "del", e.Name()).Run()
		}
	}
}

// Do runs fn on an OS thread inside the namespace: sockets fn opens belong
// to it for their whole life, whichever goroutine uses them later.
func (ns *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The goroutine ends without UnlockOSThread if the thread could not
		// be put back in its namespace: the runtime then ends the thread.
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/var/run/netns/"+ns.Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("opening namespace %s: %w", ns.Name, err)
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering namespace %s: %w", ns.Name, err)
			return
		}
		err = fn()
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// Command is a command run inside the namespace (ip netns exec).
func (ns *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Dir is one direction of a link: its delay, loss and whether it passes
// anything at all. The zero value passes every packet at once.
type Dir struct {
	delay   atomic.Int64  // nanoseconds
	lossPPM atomic.Uint32 // per million
	blocked atomic.Bool
	Passed  atomic.Int64 // packets written to the other side
	Dropped atomic.Int64 // packets lost, at random or blocked
}

// Set makes the direction delay every packet by delay and lose a share
// loss (0..1) of them at random: netem's "delay D loss L%".
func (d *Dir) Set(delay time.Duration, loss float64) {
	d.delay.Store(int64(delay))
	d.lossPPM.Store(uint32(loss * 1e6))
}

// Block stops the direction (netem "loss 100%"): packets are dropped, with
// no RST or FIN, as on a cable pulled out; Unblock lets them through again.
func (d *Dir) Block()   { d.blocked.Store(true) }
func (d *Dir) Unblock() { d.blocked.Store(false) }

// Link joins the root namespace (Host) and a test namespace (Peer) by a
// point-to-point IPv4 link; Down carries packets from the root namespace
// to the peer, Up the other way.
type Link struct {
	Host, Peer string // addresses: the root namespace's end and the peer's
	Down, Up   Dir
	host, peer *os.File
	wg         sync.WaitGroup
}

// NewLink makes the link into ns; it is torn down at the test's end.
func NewLink(t testing.TB, ns *NS) *Link {
	t.Helper()
	n := seq.Add(1)
	// 10.224.0.0/12 is unlikely to be a route of the machine; the pid and a
	// counter keep parallel tests (and test processes) apart.
	a := 16*(os.Getpid()%16) + int(n)%16
	b := (int(n) / 16) % 64 * 4
	l := &Link{Host: fmt.Sprintf("10.%d.%d.%d", 224+a/256, a%256, b+1), Peer: fmt.Sprintf("10.%d.%d.%d", 224+a/256, a%256, b+2)}
	hostName, peerName := fmt.Sprintf("bfh%d-%d", os.Getpid()%10000, n), fmt.Sprintf("bfp%d-%d", os.Getpid()%10000, n)
	var err error
	if l.host, err = openTUN(hostName); err != nil {
		t.Fatalf("netfault: making TUN device %s: %v", hostName, err)
	}
	if err := ns.Do(func() (err error) { l.peer, err = openTUN(peerName); return err }); err != nil {
		l.host.Close()
		t.Fatalf("netfault: making TUN device %s in %s: %v", peerName, ns.Name, err)
	}
	t.Cleanup(l.close)
	run(t, "ip", "addr", "add", l.Host, "peer", l.Peer, "dev", hostName)
	run(t, "ip", "link", "set", hostName, "up")
	run(t, "ip", "-n", ns.Name, "addr", "add", l.Peer, "peer", l.Host, "dev", peerName)
	run(t, "ip", "-n", ns.Name, "link", "set", peerName, "up")
	l.wg.Add(2)
	go l.pump(l.host, l.peer, &l.Down)
	go l.pump(l.peer, l.host, &l.Up)
	return l
}

// Block stops both directions; Unblock restores them.
func (l *Link) Block()   { l.Down.Block(); l.Up.Block() }
func (l *Link) Unblock() { l.Down.Unblock(); l.Up.Unblock() }

func (l *Link) close() {
	l.host.Close()
	l.peer.Close()
	l.wg.Wait()
}

type delayed struct {
	pkt []byte
	due time.Time
}

// pump moves packets from one device to the other through d. Delayed
// packets wait in a queue of 4096 (netem's limit is 1000 by default; a
// fuller queue drops, as netem's does), in order: the delay is constant.
func (l *Link) pump(from, to *os.File, d *Dir) {
	defer l.wg.Done()
	queue := make(chan delayed, 4096)
	var pending atomic.Int64 // queued or being written: a packet sent at once may not overtake them
	done := make(chan struct{})
	go func() {
		defer close(done)
		timer := time.NewTimer(time.Hour)
		defer timer.Stop()
		for p := range queue {
			if w := time.Until(p.due); w > 0 {
				timer.Reset(w)
				<-timer.C
			}
			to.Write(p.pkt)
			d.Passed.Add(1)
			pending.Add(-1)
		}
	}()
	defer func() { close(queue); <-done }()
	buf := make([]byte, 65536)
	for {
		n, err := from.Read(buf)
		if err != nil {
			return
		}
		if d.blocked.Load() || rand.Uint32N(1e6) < d.lossPPM.Load() {
			d.Dropped.Add(1)
			continue
		}
		delay := time.Duration(d.delay.Load())
		if delay == 0 && pending.Load() == 0 {
			to.Write(buf[:n])
			d.Passed.Add(1)
			continue
		}
		pending.Add(1)
		select {
		case queue <- delayed{pkt: append([]byte(nil), buf[:n]...), due: time.Now().Add(delay)}:
		default:
			pending.Add(-1)
			d.Dropped.Add(1)
		}
	}
}

// openTUN makes a TUN device (IP packets, no packet-information header)
// in the calling thread's namespace; it goes away when the file is closed.
func openTUN(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF: %w", err)
	}
	// Non-blocking, so the file goes through Go's poller and Close ends a
	// pending Read.
	return os.NewFile(uintptr(fd), name), nil
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("netfault: %s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}
