#!/usr/bin/env python3
"""Per-operation CPU breakdown of a `perf script` text file from bench/profile/perf.sh (issue 21's profile).

  breakdown.py OUT.perf.txt CPU_US_PER_OP            components, leaf-first, and inclusive shares of key frames
  breakdown.py OUT.perf.txt CPU_US_PER_OP --under F  the stacks under frame F (its callees), for a closer look
  breakdown.py OUT.perf.txt 0 --offsets F DISASM KEY where F's own samples land, against its Tier1 listing KEY in
                                                     DISASM (DOTNET_JitDisasm=... DOTNET_JitDisasmWithCodeBytes=1
                                                     DOTNET_JitStdOutFile=DISASM); a sample lands just after the
                                                     instruction that stalled (a locked one, usually)

A sample belongs to the first component that matches walking from the leaf to the root, so a helper (a cast, a write
barrier, the runtime's native code) counts for the component that called it. CPU_US_PER_OP is the bench's
"cpu us/op" of the same loop (OUT.log), so share x CPU_US_PER_OP is the component's CPU per operation.
"""
import collections
import re
import sys

COMPONENTS = [
    ('G grant -> waiter completion', r'FacadeWaiter`::TryGrant|ManualResetValueTaskSourceCore`::(SetResult|SignalCompletion)|AcquireRequest::ResultOf|TaskCompletionSource::TrySetResult|ConcurrencyLease::\.ctor'),
    ('D telemetry + counts publishing', r'GatekeeperTelemetry::|LimiterCounts::|IPermitGateListener\.(Publish|Granted)|System\.Diagnostics\.Metrics|RateTelemetry'),
    ('E wake timer', r'GateWakeTimer::|ArmWake|TimerScheduler'),
    ('B gatekeeper AroundReceive (loan reclaim, lend)', r'PermitLoan::(Reclaim|Lend|Leave|Shut|Suspend|Close)|GatekeeperActor::Lend|PermitPool::|GatekeeperActor::AroundReceive'),
    ('C PermitGate offer / release+grant, queue', r'PermitGate::|PriorityWaiterQueue::|WaiterQueue`|PermitPolicies|Permits::|GatekeeperActor::HandleAcquireRequest|GatekeeperActor::ReleasePermits|GatekeeperActor\+<>c__DisplayClass29_0|IPermitGateListener\.(Queued|Granting)|WaiterDeadlines'),
    ('F receive dispatch (ReceiveActor match)', r'MatchHandler|lambda_method|ReceiveActor::|ActorBase::AroundReceive|UntypedActor::'),
    ('J floor actor OnReceive', r'Floors\+BareLimiter::'),
    ('H lease dispose -> loan return / release message', r'ConcurrencyLease::Dispose|PermitLoanReleaser::Release|PermitLoan::TryReturn|GatekeeperReleaser::Send|ReleaseSlot::'),
    ('A facade acquire (checks, loan, request, send, await)', r'ConcurrencyLimiter::|AcquireRequest::|PermitLoanReleaser::TryClaim|PermitLoan::|FacadeWaiter`::|ManualResetValueTaskSourceCore|WaitSpans|OwnedActor'),
    ('I Akka tell / mailbox / dispatcher', r'^Akka\.|CallerRuns|ActorQueue\.Runtime'),
    ('T thread-pool enqueue / wake', r'ThreadPool::UnsafeQueue|ThreadPoolWorkQueue::Enqueue|WorkStealingQueue::LocalPush|LowLevelLifoSemaphore::Release|PortableThreadPool::|RequestWorker|MaybeAddWorkingWorker|Semaphore::Release'),
    ('K bench body + await/resume machinery', r'ActorQueue\.Bench\.|AsyncTaskMethodBuilder|YieldAwait|GetStateMachineBox|System\.Threading\.Tasks\.|ExecutionContext::RunInternal|AsyncStateMachineBox|ValueTaskAwaiter'),
    ('L thread-pool dispatch loop / spin', r'ThreadPoolWorkQueue|WorkerThread|LowLevelLifoSemaphore|RunFromThreadPoolDispatchLoop|Thread\+StartHelper|Thread::StartCallback|SpinWait'),
]
KEY_FRAMES = ['ConcurrencyLimiter::Send', 'GatekeeperActor::AroundReceive', 'GatekeeperActor::HandleAcquireRequest', 'GatekeeperActor+<>c__DisplayClass29_0',
              'PermitGate::Offer', 'FacadeWaiter`::TryGrant', 'Akka.Actor.ActorCell::SendMessage', 'Akka.Dispatch.Dispatcher::ExecuteTask',
              'Akka.Actor.ActorCell::Invoke', 'Floors+BareLimiter::OnReceive', 'GatekeeperTelemetry::', 'Task::RunContinuations', '[clrjit]', '[kernel]']
RULES = [(name, re.compile(rx)) for name, rx in COMPONENTS]


def frame_name(symbol, dso):
    if 'perf-' in dso and dso.endswith('.map'):
        name = re.sub(r'\[(Optimized|QuickJitted|Tier|Instrumented|PreJIT).*|\+0x[0-9a-f]+$', '', symbol)
        match = re.search(r'\] ([^\s\[\]]+?)(\(|$)', name)
        return re.sub(r'`\d+\[[^\]]*\]', '`', match.group(1) if match else name)
    for lib in ('libcoreclr', 'libclrjit', 'kernel', 'libc.so'):
        if lib in dso:
            return '[' + lib.split('.')[0].replace('lib', '') + ']'
    return re.sub(r'\+0x.*', '', symbol) if not symbol.startswith('[unknown]') else '[' + dso.split('/')[-1] + ']'


def samples(path):
    """(thread, leaf offset text, frames leaf first) per sample."""
    current = None
    for line in open(path, errors='replace'):
        if not line.strip():
            if current:
                yield current
            current = None
        elif not line[0].isspace():
            current = (line.split('  ')[0].strip(), [], [])
        elif current is not None:
            match = re.match(r'\s*[0-9a-f]+ (.*) \((.*)\)$', line)
            if match:
                current[1].append(match.group(1))
                current[2].append(frame_name(match.group(1), match.group(2)))
    if current:
        yield current


def component(thread, frames):
    if 'TP Worker' not in thread:
        return 'Z other threads (tiered JIT, timers)'
    for frame in frames:
        if not frame.startswith('['):
            for name, rule in RULES:
                if rule.search(frame):
                    return name
    return 'X native only' if all(f.startswith('[') for f in frames) else 'Y other managed'


def main(path, us_per_op, args):
    all_samples = list(samples(path))
    total = len(all_samples)
    if args[:1] == ['--under']:
        under = collections.Counter()
        for _, _, frames in all_samples:
            at = next((i for i, f in enumerate(frames) if args[1] in f), None)
            if at is not None:
                under[' < '.join(f[-50:] for f in frames[:at + 1][-4:])] += 1
        for stack, count in under.most_common(20):
            print(f'{count / total:6.1%}  {stack}')
        return
    if args[:1] == ['--offsets']:
        offsets(all_samples, args[1], args[2], args[3])
        return
    by_component = collections.Counter(component(t, frames) for t, _, frames in all_samples)
    print(f'{total} samples, {us_per_op} cpu us/op\n\n| component (leaf-first) | share | us/op |\n|---|---:|---:|')
    for name, count in sorted(by_component.items()):
        if count / total >= 0.003:
            print(f'| {name} | {count / total:.1%} | {count / total * us_per_op:.3f} |')
    print('\n| frame (inclusive) | share | us/op |\n|---|---:|---:|')
    for key in KEY_FRAMES:
        count = sum(1 for _, _, frames in all_samples if any(key in f for f in frames))
        if count:
            print(f'| {key} | {count / total:.1%} | {count / total * us_per_op:.3f} |')


def offsets(all_samples, frame, disasm, key):
    counts = collections.Counter()
    for _, raw, frames in all_samples:
        if frames and frame in frames[0] and (match := re.search(r'\+0x([0-9a-f]+)$', raw[0])):
            counts[int(match.group(1), 16)] += 1
    listing = []
    for part in open(disasm).read().split('; Assembly listing for method ')[1:]:
        if key in part.split('\n', 1)[0] and '(Tier1)' in part.split('\n', 1)[0]:
            offset = 0
            for line in part.split('\n'):
                if match := re.search(r';; offset=0x([0-9A-F]+)', line):
                    offset = int(match.group(1), 16)
                elif (match := re.match(r'\s+([0-9A-F]{2,})\s{2,}(\S.*)', line)) and len(match.group(1)) % 2 == 0:
                    listing.append((offset, match.group(2).strip()))
                    offset += len(match.group(1)) // 2
            break
    own = sum(counts.values())
    print(f'{frame}: {own} samples of its own')
    for at, count in counts.most_common(8):
        before = [text for offset, text in listing if offset < at][-1:] or ['?']
        print(f'{count / own:6.1%} at +{at:#x}, after: {before[0][:100]}')


if __name__ == '__main__':
    main(sys.argv[1], float(sys.argv[2]), sys.argv[3:])
