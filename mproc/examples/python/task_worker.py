# task_worker.py: the tutorial's distributed-process worker ("分布式进程"), with its
# slip fixed (queue.Empty) and the master's address from the command line:
#
#     python3 task_worker.py [HOST:PORT]     (default 127.0.0.1:5000)
#
# The master may be task_master.py or Rust's
# (cargo run -p mproc --example task_master -- 127.0.0.1:PORT).

import sys, time, queue
from multiprocessing.managers import BaseManager

class QueueManager(BaseManager):
    pass

# This manager only fetches the queues from the network: register the names only.
QueueManager.register('get_task_queue')
QueueManager.register('get_result_queue')

addr = sys.argv[1] if len(sys.argv) > 1 else '127.0.0.1:5000'
authkey = sys.argv[2].encode() if len(sys.argv) > 2 else b'abc'
server_addr, port = addr.rsplit(':', 1)
print('Connect to server %s...' % server_addr)

# Port and authkey exactly as the master's.
m = QueueManager(address=(server_addr, int(port)), authkey=authkey)
m.connect()

task = m.get_task_queue()
result = m.get_result_queue()

# Take tasks from the task queue, put results on the result queue.
for i in range(10):
    try:
        n = task.get(timeout=1)
        print('run task %d * %d...' % (n, n))
        r = '%d * %d = %d' % (n, n, n * n)
        time.sleep(0.1)
        result.put(r)
    except queue.Empty:
        print('task queue is empty')
print('worker exit')
