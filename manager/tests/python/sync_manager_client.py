# Drives a SyncManager client through every built-in type and prints what it sees.
#
#     python3 sync_manager_client.py                    CPython's own SyncManager
#     python3 sync_manager_client.py HOST:PORT AUTHKEY  a running server (mproc's)
#
# The two runs must print the same lines.

import multiprocessing, queue, sys, threading
from multiprocessing.managers import SyncManager

if len(sys.argv) > 1:
    host, port = sys.argv[1].rsplit(':', 1)
    # A proxy rebuilt from a pickle (one stored in a dict) authenticates with the
    # process's authkey, as with any remote CPython manager.
    multiprocessing.current_process().authkey = sys.argv[2].encode()
    m = SyncManager(address=(host, int(port)), authkey=sys.argv[2].encode())
    m.connect()
else:
    m = SyncManager()
    m.start()

def show(*args):
    print(*args, flush=True)

def error(f):
    try:
        f()
        return 'no error'
    except Exception as e:
        return type(e).__name__

# list
l = m.list([3, 1, 2])
l.append(5)
l.extend([4, 'x'])
l.remove('x')
l.sort()
show('list sorted', l[:] if False else list(l), len(l))
l.reverse()
show('list reversed', list(l), l.count(1), l.index(2))
l.insert(0, 9)
l[-1] = 7
del l[1]
show('list edited', list(l), l.pop(), l.pop(0), 2 in l, 99 in l)
l.sort(reverse=True)
show('list desc', list(l), l + [1], l * 2)
show('list str', str(l))
show('list errors', error(lambda: l[100]), error(lambda: l.remove(999)), error(lambda: l.index(999)))
l.extend([1.0, True])
show('list numbers', l.count(1), l.index(1.0))

# dict
d = m.dict({'a': 1}, b=2)
d[1] = 'one'
show('dict int/float key', d[1.0], d[True], d.get(1), d.get('zz', 5))
d.setdefault('s', [1])
d.update({'u': 3})
d.update([('v', 4)])
show('dict', sorted(d.keys(), key=str), len(d), 'a' in d, 'q' in d)
show('dict pop', d.pop('u'), d.pop('nope', 'dflt'), d.popitem())
del d['a']
show('dict items', sorted(d.items(), key=str), sorted(d.values(), key=str))
show('dict copy', d.copy() == {'b': 2, 1: 'one', 's': [1]})
show('dict errors', error(lambda: d['missing']), error(lambda: d.pop('missing')))
d.clear()
show('dict cleared', len(d), error(lambda: d.popitem()))

# Queue and JoinableQueue
q = m.Queue()
q.put(1)
q.put('x')
q.put_nowait([2, 3])
show('queue', q.qsize(), q.get(), q.get_nowait(), q.get(timeout=1), q.empty(), q.full())
show('queue empty', error(lambda: q.get(timeout=0.05)), error(lambda: q.get_nowait()), error(lambda: q.get(False)))
b = m.Queue(1)
b.put('only')
show('queue full', b.full(), error(lambda: b.put(2, timeout=0.05)), error(lambda: b.put_nowait(3)))
jq = m.JoinableQueue()
jq.put(10)
show('joinable', jq.get(), jq.task_done(), jq.join(), error(lambda: jq.task_done()))

# Namespace
ns = m.Namespace()
ns.x = 1
ns.y = 'a'
show('namespace', ns.x, ns.y, str(ns))
del ns.x
show('namespace missing', error(lambda: ns.x), getattr(ns, 'zz', 'default'))

# Value and Array
v = m.Value('i', 10)
show('value', v.value, v.get())
v.value = 20
v.set(v.get() + 1)
show('value set', v.value)
a = m.Array('i', [1, 2, 3])
a[1] = 5
show('array', len(a), a[0], a[-1], list(a), error(lambda: a[10]))

# Lock, RLock
lk = m.Lock()
show('lock', lk.acquire(), lk.acquire(False), lk.acquire(True, 0.05))
lk.release()
with lk:
    show('lock with')
show('lock release unlocked', error(lambda: lk.release()))
r = m.RLock()
show('rlock', r.acquire(), r.acquire(), r.release(), r.release(), error(lambda: r.release()))

# Semaphore, BoundedSemaphore
s = m.Semaphore(2)
show('semaphore', s.acquire(), s.acquire(), s.acquire(False), s.acquire(True, 0.05), s.release())
bs = m.BoundedSemaphore(1)
show('bounded', bs.acquire(), bs.release(), error(lambda: bs.release()))

# Event
e = m.Event()
show('event', e.is_set(), e.wait(0.05))
e.set()
show('event set', e.is_set(), e.wait(1))
e.clear()
show('event clear', e.is_set())

# Condition
c = m.Condition()
with c:
    c.notify()
    c.notify_all()
    show('condition wait', c.wait(0.05))
show('condition unowned', error(lambda: c.notify()))

def notifier():
    with c:
        c.notify()

with c:
    t = threading.Thread(target=notifier)
    t.start()
    show('condition notified', c.wait(10))
t.join()

# Barrier
br = m.Barrier(1)
show('barrier', br.wait(), br.parties, br.n_waiting, br.broken)
br.abort()
show('barrier aborted', br.broken, error(lambda: br.wait()))
br.reset()
show('barrier reset', br.broken, br.wait())

# Iterating: a dict proxy's __iter__ answers an Iterator proxy; a list proxy's goes by index
di = m.dict({'x': 1, 'y': 2, 3: 'z'})
show('dict iter', list(di), [k for k in di], sorted(iter(di), key=str))
it = iter(di)
show('dict iterator', type(it).__name__, next(it), next(it), next(it), error(lambda: next(it)))
li = m.list(['a', 'b', 'c'])
show('list iter', list(li), [x * 2 for x in li], sorted(li, reverse=True))

# Condition(lock) over a Lock proxy: the condition and the proxy hold one lock
lk2 = m.Lock()
cv = m.Condition(lk2)
with cv:
    show('condition over lock', lk2.acquire(False), cv.wait(0.05), lk2.acquire(False))
show('condition lock free', lk2.acquire(False), lk2.release())

# Proxies stored in a dict and a list come back as proxies to the same objects
holder = m.dict()
holder['lock'] = lk2
holder['list'] = li
got = holder['lock']
show('proxy in dict', type(got).__name__, got.acquire(False), lk2.acquire(False), got.release())
show('list proxy in dict', type(holder['list']).__name__, list(holder['list']), holder['list'][1])
holder['list'].append('d')
holder['temp'] = m.Event()  # the sender's own proxy goes at once
holder['temp'].set()
show('proxy outlives its sender', holder['temp'].is_set(), type(holder['temp']).__name__)
nested = m.list([li, 5])
show('proxy in list', type(nested[0]).__name__, list(nested[0]), nested[1], list(li))

# get_methods, and calls through an AutoProxy built from it
from multiprocessing.managers import AutoProxy, dispatch
def get_methods(proxy):
    # The server answers one request per connection at its own level.
    conn = m._Client(m._address, authkey=m._authkey)
    try:
        return dispatch(conn, None, 'get_methods', (proxy._token,))
    finally:
        conn.close()
show('get_methods', sorted(get_methods(lk2)), sorted(get_methods(di)), sorted(get_methods(it)))
auto = AutoProxy(di._token, 'pickle', manager=m, authkey=m._authkey)
show('autoproxy', type(auto).__name__, auto.get('x'), len(auto), auto.__getitem__(3), error(lambda: auto.__getitem__('q')))
auto2 = AutoProxy(lk2._token, 'pickle', manager=m, authkey=m._authkey)
show('autoproxy lock', auto2.acquire(False), lk2.acquire(False), auto2.release())

# A broken barrier raises threading.BrokenBarrierError
bb = m.Barrier(2, timeout=0.05)
show('barrier broken', error(lambda: bb.wait()), bb.broken, error(lambda: bb.wait()))

# A KeyError carries the key itself, of its own type
def key_error(f):
    try:
        f()
        return 'no error'
    except KeyError as e:
        return repr(e.args), type(e.args[0]).__name__
kd = m.dict({1: 'a'})
show('key errors', key_error(lambda: kd[2]), key_error(lambda: kd[(1, 'x')]), key_error(lambda: kd.pop(2.5)))
show('key errors del', key_error(lambda: kd.__delitem__(b'k')), key_error(lambda: kd[None]), key_error(lambda: kd['s']))

show('done')
if len(sys.argv) <= 1:
    m.shutdown()
