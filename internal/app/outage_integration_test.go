package app

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap/zaptest/observer"

	"github.com/consentd/consentd/config"
	"github.com/consentd/consentd/internal/lib/outage"
	"github.com/consentd/consentd/internal/testing/itest"
)

// outageSummary stands for outage.DefaultSummary (a minute) in
// TestIntegrationOutageLogsLittle: 2 s of the test are a minute of
// production, as far as the outage reports go.
const outageSummary = 2 * time.Second

// TestIntegrationOutageLogsLittle takes Redis and Kafka away together
// for 12 s, six minutes at the scale of outageSummary: Redis is killed
// (connections refused) and the in-process Kafka broker closes every
// connection at its first request. Every line consentd logs at info and
// above from the start of the outage until both systems are reported
// back is counted: fewer than 50 (a summary per system per scaled
// minute, plus the first lines and the recoveries), where a line per
// retry would be thousands. Then events flow again.
//
// What the scale does not cover: the loops' backoffs and the barrier
// lease keep their real timings, so the test makes more attempts per
// scaled minute than production would: more failures per summary, never
// fewer.
func TestIntegrationOutageLogsLittle(t *testing.T) {
	itest.Require(t) // for redis-server; Kafka is in-process
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	var kafkaDown atomic.Bool
	cluster.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if kafkaDown.Load() {
			return nil, errors.New("outage"), true // the connection is closed
		}
		return nil, nil, false
	})
	rp := startRedis(t, t.TempDir(), itest.FreePort(t))
	env := itest.Env{Name: itest.Plain, Kafka: cluster.ListenAddrs()[0], Redis: rp.addr(), RedisMode: config.RedisSingle}
	s := newStack(t, env, 2)
	seedFull(t, env.Redis, s.prefix, "a")
	seedFull(t, env.Redis, s.prefix, "b")
	s.start(t, nil, WithOutageReports(outage.Config{Summary: outageSummary}))

	itest.Produce(t, env.Kafka, s.raw, fullConsentEvents("a", 0, 100)...)
	itest.Eventually(t, 60*time.Second, "batch a written", func() bool { return itest.Count(t, env.Kafka, s.perso) == 100 })
	itest.Eventually(t, 30*time.Second, "batch a committed", func() bool {
		c := itest.Committed(t, env.Kafka, s.group, s.raw, 2)
		return c[0]+c[1] == 100
	})

	if err := itest.Redis(t, env.Redis).Save(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	before := s.logs.Len()
	kafkaDown.Store(true)
	rp.kill(t)
	time.Sleep(6 * time.Minute / time.Minute * outageSummary) // six scaled minutes
	startRedis(t, rp.dir, rp.port)
	kafkaDown.Store(false)
	itest.Eventually(t, 60*time.Second, "both systems reported back", func() bool {
		return s.logs.FilterMessage("Redis back").Len() > 0 && s.logs.FilterMessage("Kafka back").Len() > 0
	})
	during := s.logs.All()[before:]

	var b strings.Builder
	for _, e := range during {
		fmt.Fprintf(&b, "\n%s %s %v", e.Level, e.Message, e.ContextMap())
	}
	t.Logf("%d lines from the start of the outage to the recovery lines:%s", len(during), b.String())
	if len(during) >= 50 {
		t.Errorf("%d lines logged through a six-minute outage of Redis and Kafka, want fewer than 50", len(during))
	}
	for _, system := range []string{"Redis", "Kafka"} {
		// The summaries show that the outage lasted six scaled minutes and
		// that the loops kept failing through it.
		if n := count(during, system+" still unavailable"); n < 3 {
			t.Errorf("%d summaries of the %s outage, want one per scaled minute (at least 3 of 6)", n, system)
		}
		if n := count(during, system+" unavailable"); n != 1 {
			t.Errorf("%s reported unavailable %d times, want once", system, n)
		}
	}

	itest.Produce(t, env.Kafka, s.raw, fullConsentEvents("b", 0, 100)...)
	itest.Eventually(t, 60*time.Second, "batch b written after the outage", func() bool { return itest.Count(t, env.Kafka, s.perso) == 200 })
	ids := cleanIDs(t, env.Kafka, s.perso)
	for i := range 100 {
		if n := ids[fmt.Sprintf("b-m%d", i)]; n != 1 {
			t.Errorf("event b-m%d written %d times", i, n)
		}
	}
}

// count returns how many of entries have message msg.
func count(entries []observer.LoggedEntry, msg string) int {
	n := 0
	for _, e := range entries {
		if e.Message == msg {
			n++
		}
	}
	return n
}
