package consent

import (
	"encoding/binary"
	"math"
	"math/bits"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// This file holds the cache's compact form of a Record: an entry of fixed
// size, without pointers, in which the granted purposes are one index into
// a cache-wide table of interned purpose sets; the subject, the grant times
// (if any) and the link (if any) are bytes in the shard's arena
// (cache_shard.go). A cached record costs about 130 bytes, against some
// 650 as a Record with its maps (BenchmarkCacheMemory), and the garbage
// collector has nothing to scan in the cache but the few records kept
// whole and the interned sets.

// entry is one cached answer, or a free slot (flagLive clear).
type entry struct {
	version int64
	expires int64 // Record.Expires in Unix nanoseconds, with flagExpires
	stale   int64 // cache clock (instant.mono): from then on the TTL has passed
	// off is where the entry's bytes start in the shard's arena: the
	// subject (keyLen bytes), the grant times (timesLen) and the link
	// (linkLen). In a free slot, the next free slot + 1.
	off      uint32
	hash     uint32 // the subject's hash in the shard's index
	size     uint32 // bytes accounted to the entry (entryBytes, arenaBytes, recordBytes)
	keyLen   uint16
	timesLen uint16
	linkLen  uint16
	set      uint16 // index of the granted purposes in the purpose-set table
	flags    uint8
	ref      bool // CLOCK reference bit: looked up since the hand last passed
}

const (
	flagLive       uint8 = 1 << iota
	flagFound            // Record.Found
	flagGrantedNil       // Record.Granted is nil rather than empty
	flagTimes            // Record.GrantedAt is not nil: the times are in the arena
	flagExpires          // expires holds Record.Expires
	flagExpiresUTC       // ... in UTC; else in time.Local
	flagFull             // the shard holds the record whole (shard.full)
)

const (
	// maxPurposes is the most purpose names the cache interns: one bit
	// each in a set's mask. Purposes are few (a policy names a handful);
	// a record with a purpose past the table is kept whole.
	maxPurposes = 64
	// maxPurposeSets is the most distinct purpose sets interned, one
	// shared map each. Real records fall into a few dozen sets; the cap
	// only stops a store serving arbitrary purpose names from growing the
	// table without bound (records past it are kept whole). Both tables
	// are emptied with the cache (Purge).
	maxPurposeSets = 4096
	// maxPurposeName is the longest purpose name interned: a record
	// granting a longer one is kept whole.
	maxPurposeName = 64
	// maxKeyLen is the longest subject cached (a longer one is always
	// asked of the store); a link longer than it keeps the record whole.
	maxKeyLen = math.MaxUint16

	// entryBytes is what the cache accounts an entry, besides its bytes
	// in the arena (arenaBytes): the entry with a quarter more for the
	// slice's growth, and its share of the index (one 8-byte slot at a
	// load of at most 3/4).
	entryBytes = int(unsafe.Sizeof(entry{}))*5/4 + 11
	// fullRecordBytes, mapBytes and mapEntryBytes approximate a record
	// kept whole: the Record and its key and value in the shard's map of
	// them, a map, and one key and value of a map besides the key's bytes.
	fullRecordBytes = int(unsafe.Sizeof(Record{})) + 8 + 16
	mapBytes        = 48
	mapEntryBytes   = 40
)

// purposeSet is one interned set of granted purposes. Its fields are never
// modified once it is published.
type purposeSet struct {
	names   []string        // the purposes, in the order of their bits
	granted map[string]bool // shared by every record with these purposes: read only
}

// interner holds the cache-wide purpose table (name -> bit) and the table
// of purpose sets (mask -> index), both bounded. Writers hold mu; readers
// decoding hits load the published set table without locking: it is only
// ever appended to, and replaced by reset, which starts a new generation.
type interner struct {
	gen atomic.Uint64 // tables reset so far
	// allowed, when set, are the only purposes interned (CacheConfig.Purposes).
	allowed map[string]bool
	mu      sync.Mutex
	bits    map[string]uint8
	names   []string
	byMask  map[uint64]uint16
	sets    []*purposeSet
	view    atomic.Pointer[[]*purposeSet]
}

// allow restricts the purposes interned to purposes (none: any).
func (in *interner) allow(purposes []string) {
	if len(purposes) == 0 {
		return
	}
	in.allowed = make(map[string]bool, len(purposes))
	for _, p := range purposes {
		in.allowed[p] = true
	}
}

// setTable returns the published purpose sets.
func (in *interner) setTable() []*purposeSet {
	if p := in.view.Load(); p != nil {
		return *p
	}
	return nil
}

// intern returns the index and the set of the purposes granted lists;
// ok is false when a table is full.
func (in *interner) intern(granted map[string]bool) (idx uint16, ps *purposeSet, ok bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	var mask uint64
	for p := range granted {
		b, known := in.bits[p]
		if !known {
			if len(in.names) == maxPurposes || len(p) > maxPurposeName || in.allowed != nil && !in.allowed[p] {
				return 0, nil, false
			}
			p = strings.Clone(p)
			b = uint8(len(in.names))
			if in.bits == nil {
				in.bits = map[string]uint8{}
			}
			in.bits[p] = b
			in.names = append(in.names, p)
		}
		mask |= 1 << b
	}
	if idx, known := in.byMask[mask]; known {
		return idx, in.sets[idx], true
	}
	if len(in.sets) == maxPurposeSets {
		return 0, nil, false
	}
	ps = &purposeSet{granted: make(map[string]bool, bits.OnesCount64(mask))}
	for m := mask; m != 0; m &= m - 1 {
		p := in.names[bits.TrailingZeros64(m)]
		ps.names = append(ps.names, p)
		ps.granted[p] = true
	}
	idx = uint16(len(in.sets))
	if in.byMask == nil {
		in.byMask = map[uint64]uint16{}
	}
	in.byMask[mask] = idx
	// Appending never changes what a published table shows: a reader
	// sees either the old length or, once stored, the new one.
	in.sets = append(in.sets, ps)
	view := in.sets
	in.view.Store(&view)
	return idx, ps, true
}

// size returns how many purposes and sets are interned.
func (in *interner) size() (purposes, sets int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.names), len(in.sets)
}

// reset empties both tables. The caller guarantees that no stored entry
// refers to them any more.
func (in *interner) reset() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.bits, in.names, in.byMask, in.sets = nil, nil, nil, nil
	in.view.Store(nil)
	in.gen.Add(1)
}

// encoded is a record ready to store: its entry (without the subject and
// arena fields), the bytes that follow the subject in the arena, and the
// record itself when it is kept whole.
type encoded struct {
	e     entry
	tail  []byte // grant times then link
	full  *Record
	bytes int    // accounted, besides the arena
	gen   uint64 // of the tables e.set refers to
}

// encode returns r compact when it can be rebuilt from that exactly, else
// whole. The entry may be stored only while the tables are still of
// generation gen (no reset since): its set index means nothing in others.
func (in *interner) encode(r Record) encoded {
	gen := in.gen.Load() // before interning: a reset after it is seen
	x, ok := in.compact(r)
	if !ok {
		x = encoded{e: entry{flags: flagLive | flagFull}, full: &r, bytes: entryBytes + recordBytes(r)}
	} else {
		x.bytes = entryBytes
	}
	x.gen = gen
	return x
}

// compact encodes r, or reports that it cannot: a purpose granted false, a
// grant time of a purpose not granted, an empty but non-nil GrantedAt, an
// expiry that Unix nanoseconds in UTC or time.Local do not give back
// exactly, a very long link, or a full intern table.
func (in *interner) compact(r Record) (encoded, bool) {
	e := entry{flags: flagLive, version: r.Version}
	if r.Found {
		e.flags |= flagFound
	}
	if !r.Expires.IsZero() {
		ns := r.Expires.UnixNano()
		back := time.Unix(0, ns)
		if r.Expires.Location() == time.UTC {
			back = back.UTC()
			e.flags |= flagExpiresUTC
		}
		if back != r.Expires { // out of range, another zone or a monotonic reading
			return encoded{}, false
		}
		e.flags |= flagExpires
		e.expires = ns
	}
	if len(r.LinkedTo) > maxKeyLen {
		return encoded{}, false
	}
	e.linkLen = uint16(len(r.LinkedTo))
	if r.Granted == nil {
		if r.GrantedAt != nil {
			return encoded{}, false
		}
		e.flags |= flagGrantedNil
		return encoded{e: e, tail: []byte(r.LinkedTo)}, true
	}
	for _, ok := range r.Granted {
		if !ok {
			return encoded{}, false
		}
	}
	if r.GrantedAt != nil && len(r.GrantedAt) == 0 {
		return encoded{}, false
	}
	for p := range r.GrantedAt {
		if !r.Granted[p] {
			return encoded{}, false
		}
	}
	idx, ps, ok := in.intern(r.Granted)
	if !ok {
		return encoded{}, false
	}
	e.set = idx
	var tail []byte
	if r.GrantedAt != nil {
		e.flags |= flagTimes
		tail = appendTimes(make([]byte, 0, 1+4*len(r.GrantedAt)+len(r.LinkedTo)), r.Version, ps.names, r.GrantedAt)
		e.timesLen = uint16(len(tail)) // at most 1+10+64*10 bytes
	}
	return encoded{e: e, tail: append(tail, r.LinkedTo...)}, true
}

// appendTimes encodes grant times: a mask over the set's purposes of those
// with a time (uvarint), then each time as its distance from the record's
// version (zigzag varint, two's complement: exact for any int64). Versions
// are the Unix milliseconds of the last change, so a grant some hours
// before it takes four or five bytes.
func appendTimes(b []byte, version int64, names []string, at map[string]int64) []byte {
	var present uint64
	for j, p := range names {
		if _, ok := at[p]; ok {
			present |= 1 << j
		}
	}
	b = binary.AppendUvarint(b, present)
	for _, p := range names {
		if t, ok := at[p]; ok {
			b = binary.AppendVarint(b, int64(uint64(version)-uint64(t)))
		}
	}
	return b
}

// readTimes decodes what appendTimes wrote.
func readTimes(b []byte, version int64, names []string) map[string]int64 {
	present, n := binary.Uvarint(b)
	b = b[n:]
	out := make(map[string]int64, bits.OnesCount64(present))
	for j, p := range names {
		if present&(1<<j) != 0 {
			d, n := binary.Varint(b)
			b = b[n:]
			out[p] = int64(uint64(version) - uint64(d))
		}
	}
	return out
}

// record rebuilds the Record e holds, given the bytes after its subject
// and the purpose-set table. Granted is the set's shared map; GrantedAt is
// built afresh, only when the record has grant times.
func (e *entry) record(tail []byte, sets []*purposeSet) Record {
	r := Record{Found: e.flags&flagFound != 0, Version: e.version}
	if e.flags&flagGrantedNil == 0 {
		ps := sets[e.set]
		r.Granted = ps.granted
		if e.flags&flagTimes != 0 {
			r.GrantedAt = readTimes(tail[:e.timesLen], e.version, ps.names)
		}
	}
	if e.flags&flagExpires != 0 {
		r.Expires = time.Unix(0, e.expires)
		if e.flags&flagExpiresUTC != 0 {
			r.Expires = r.Expires.UTC()
		}
	}
	if e.linkLen > 0 {
		r.LinkedTo = string(tail[e.timesLen : int(e.timesLen)+int(e.linkLen)])
	}
	return r
}

// instant is a time as the cache reads it: wall, Unix nanoseconds (for
// record expiries, which are wall times), and mono, nanoseconds since the
// cache was made on the monotonic clock when the time has a reading of it
// (for TTLs: a wall clock stepped back must not stretch them).
type instant struct{ wall, mono int64 }

// servable reports whether e may answer at: its TTL has not passed and
// its record has not expired. A record kept whole is checked by the
// caller.
func (e *entry) servable(at instant) bool {
	return at.mono < e.stale && (e.flags&flagExpires == 0 || at.wall < e.expires)
}

// arenaBytes is what the cache accounts n bytes in a shard's arena: a
// quarter more for the dead bytes and spare room a compaction leaves
// (cache_shard.go), so that accounted bytes track the heap the cache holds
// (BenchmarkCacheMemory reports both).
func arenaBytes(n int) int { return n + n/4 }

// recordBytes approximates the heap a record kept whole holds.
func recordBytes(r Record) int {
	n := fullRecordBytes + len(r.LinkedTo)
	for _, m := range []int{len(r.Granted), len(r.GrantedAt)} {
		if m > 0 {
			n += mapBytes + m*mapEntryBytes
		}
	}
	for p := range r.Granted {
		n += len(p)
	}
	for p := range r.GrantedAt {
		n += len(p)
	}
	return n
}

// staleAt returns when an answer stored at monoNs (instant.mono)
// outlives ttl.
func staleAt(monoNs int64, ttl time.Duration) int64 {
	if ttl > 0 && monoNs > math.MaxInt64-int64(ttl) {
		return math.MaxInt64
	}
	return monoNs + int64(ttl)
}
