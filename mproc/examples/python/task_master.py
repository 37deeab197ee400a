# task_master.py: the tutorial's distributed-process master ("分布式进程"), with its two
# slips fixed (the second register names get_result_queue; queue.Empty in the worker)
# and the address taken from the command line:
#
#     python3 task_master.py [PORT]        (default 5000; binds every interface)
#
# A worker in Python (task_worker.py) or in Rust
# (cargo run -p mproc --example task_worker -- 127.0.0.1:PORT) takes the tasks.

import random, sys, time, queue
from multiprocessing.managers import BaseManager

task_queue = queue.Queue()  # the queue tasks are sent on
result_queue = queue.Queue()  # the queue results come back on

class QueueManager(BaseManager):
    pass

# Register both queues on the network; callable= names the queue object.
QueueManager.register('get_task_queue', callable=lambda: task_queue)
QueueManager.register('get_result_queue', callable=lambda: result_queue)

port = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
authkey = sys.argv[2].encode() if len(sys.argv) > 2 else b'abc'
manager = QueueManager(address=('', port), authkey=authkey)  # port, authkey 'abc'
manager.start()

# Reach the queues through the manager, never directly.
task = manager.get_task_queue()
result = manager.get_result_queue()

for i in range(10):
    n = random.randint(0, 10000)
    print('Put task %d...' % n)
    task.put(n)

print('Try get results...')
for i in range(10):
    r = result.get(timeout=10)
    print('Result: %s' % r)

manager.shutdown()
print('master exit.')
