package app

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/consentd/consentd/consent"
	"github.com/consentd/consentd/consent/changes"
	"github.com/consentd/consentd/consent/redisstore"
	"github.com/consentd/consentd/pipeline"
)

// The revocation barrier's wiring: every running instance is a member
// (redisstore.Member) whose clean writes pass a pipeline.WriteFence, and
// every change service waits on redisstore.Barrier after a withdrawal or
// an erasure. See the README, "Revocation barrier".

// barrierHeartbeats is how many lease renewals fit in one lease.
const barrierHeartbeats = 6

// barrierMember is an instance's side of the barrier.
type barrierMember struct {
	member *redisstore.Member
	fence  *pipeline.WriteFence
	cache  *consent.Cache
	rdb    redis.UniversalClient
	prefix string
	log    *zap.Logger
	// changes, if set, makes this instance sweep expired records.
	changes func() *changes.Service
}

// sweepInterval is how often each instance looks for expired records.
const sweepInterval = 500 * time.Millisecond

func newBarrierMember(rdb redis.UniversalClient, prefix string, cache *consent.Cache, h *pipeline.Health, log *zap.Logger) *barrierMember {
	m := redisstore.NewMember(rdb, prefix)
	h.Set(pipeline.CondBarrier, pipeline.ErrLeaseLapsed)
	return &barrierMember{
		member: m,
		fence:  &pipeline.WriteFence{Changes: cache, Cache: cache, Member: m, TTL: m.TTL, Margin: redisstore.LeaseMargin, Health: h, Log: log},
		cache:  cache, rdb: rdb, prefix: prefix, log: log,
	}
}

// run keeps the lease and answers barriers until ctx ends, then leaves.
func (b *barrierMember) run(ctx context.Context) {
	go redisstore.WatchBarriers(ctx, b.rdb, b.prefix, b.confirm, b.log)
	if b.changes != nil {
		go redisstore.NewSweeper(b.rdb, b.prefix, b.changes().Expire, b.log).Run(ctx, sweepInterval)
	}
	b.fence.Run(ctx, b.member.TTL/barrierHeartbeats)
	lctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = b.member.Leave(lctx)
}

// confirm drops the barrier's subjects from the cache, waits until no
// write checked before that is in flight, and confirms. A barrier that
// cannot be confirmed in time is not confirmed: the revoker fences this
// instance.
func (b *barrierMember) confirm(id string, subjects []string) {
	for _, s := range subjects {
		b.cache.Invalidate(s)
	}
	seq := b.cache.Seq()
	ctx, cancel := context.WithTimeout(context.Background(), redisstore.DefaultBarrierTimeout)
	defer cancel()
	if err := b.fence.Drain(ctx, seq); err != nil {
		return
	}
	if err := b.member.Confirm(ctx, id); err != nil {
		b.log.Warn("confirming a revocation barrier failed", zap.Error(err))
	}
}
