package server

import (
	"context"
	"net"
	"os"
	"time"

	"github.com/berthmedia/berth/internal/auth"
	"github.com/berthmedia/berth/internal/cluster"
	"github.com/berthmedia/berth/internal/config"
	"github.com/berthmedia/berth/internal/hub"
)

// startCluster joins the cluster when [cluster] redis is set: after the
// listeners are bound (the advertised URLs carry their real ports) and
// before the hub, whose observer the node is. A node_id another running
// Berth holds refuses the start; Redis being down does not.
func (s *Server) startCluster() error {
	cfg := s.Config.Cluster
	if cfg.Redis == "" {
		return nil
	}
	adv, err := cluster.DeriveAdvertise(cfg.Advertise, s.Config.General.ListenIP,
		cluster.Listeners{RTSP: s.Addr("rtsp"), RTMP: s.Addr("rtmp"), HTTP: s.Addr("http")})
	if err != nil {
		return err
	}
	id := cfg.NodeID
	if id == "" {
		id = defaultNodeID(s.Addr("rtsp"), s.Addr("rtmp"), s.Addr("http"))
	}
	n, err := cluster.New(cluster.Options{Redis: cfg.Redis, NodeID: id, Advertise: adv,
		TTL: seconds(cfg.TTL), Version: Version, Log: s.Log.With("component", "cluster")})
	if err != nil {
		return err
	}
	if err := n.Claim(context.Background()); err != nil {
		n.Close(time.Second)
		return err
	}
	s.cluster = n
	s.OnReload([]string{"cluster.ttl"}, func(c *config.Config) { n.SetTTL(seconds(c.Cluster.TTL)) })
	return nil
}

func seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// defaultNodeID is hostname-port, the port of the first listener on: two
// Berths on one machine differ by it.
func defaultNodeID(addrs ...string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "berth"
	}
	for _, a := range addrs {
		if _, p, err := net.SplitHostPort(a); err == nil {
			return host + "-" + p
		}
	}
	return host
}

// clusterObserver is the node as a hub observer, or one that hears nothing.
func (s *Server) clusterObserver() hub.Observer {
	if s.cluster == nil {
		return hub.OnPublish(func(*hub.Stream) {})
	}
	return s.cluster
}

// runCluster hands the node the hub and the pull proxies and starts its
// heartbeat; Start calls it once everything listens.
func (s *Server) runCluster() {
	if s.cluster == nil {
		return
	}
	s.cluster.Hub, s.cluster.Pulls = s.Hub, s.proxies
	s.cluster.Wait = s.streamWait() // a waiting reader's path is looked up again until then (edge.go)
	s.Metrics.Registry().MustRegister(s.cluster.Collector())
	s.cluster.Run()
}

// stopCluster removes this node's entries at once, so edges and new
// publishers elsewhere need not wait for the TTL.
func (s *Server) stopCluster() {
	if s.cluster != nil {
		s.cluster.Close(time.Second)
	}
}

// Cluster returns the cluster node; nil when [cluster] redis is empty.
func (s *Server) Cluster() *cluster.Node { return s.cluster }

// clusterStatus is getClusterInfo's and the status page's view; ok false
// when clustering is off.
func (s *Server) clusterStatus(ctx context.Context) (any, bool) {
	if s.cluster == nil {
		return nil, false
	}
	return s.cluster.Status(ctx), true
}

// publishGate asks the cluster (is the path live on another node?) before
// the web hooks' on_publish, so a refused publisher costs no hook call.
func (s *Server) publishGate() auth.Gate {
	if s.cluster == nil {
		return s.hooks
	}
	return gates{s.cluster, s.hooks}
}

// gates asks each gate in turn; the first refusal wins.
type gates []auth.Gate

func (g gates) Authorize(ctx context.Context, r auth.Request) error {
	for _, x := range g {
		if err := x.Authorize(ctx, r); err != nil {
			return err
		}
	}
	return nil
}
