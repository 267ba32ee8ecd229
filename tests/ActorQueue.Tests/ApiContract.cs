using System.Diagnostics;
using ActorQueue.Actors;
using ActorQueue.Primitives;
using Akka.Actor;
using Serilog;

#pragma warning disable CS0219 // values are assigned only to pin their types
#pragma warning disable CA1849, CA2012

namespace ActorQueue.Tests;

/// <summary>
/// The public API contract of docs/API.md, as code: every listed member with its exact name, parameter names
/// (named arguments) and types. It is never run; it only has to compile, so renaming or dropping a contract member
/// breaks the build, and CI with it.
/// </summary>
internal static class ApiContract
{
    internal static async Task ShapesCompileAsync(ActorSystem? sys, ILogger? log, ActivitySource tracer, CancellationToken ct)
    {
        // §1
        var l1 = new ConcurrencyLimit(MaxRunning: 1, MaxQueued: null);
        ConcurrencyLimitExceededException ex = new("m");
        IConcurrencyLimiter il = new ConcurrencyLimiter(maxRunning: 1, maxQueued: null, name: null, tracer: tracer, system: sys);
        string? n = il.Name; int mr = il.MaxRunning; int? mq = il.MaxQueued; int rc = il.RunningCount, wc = il.WaitingCount, ac = il.AvailableCount;
        ValueTask<ConcurrencyLease> acq = il.AcquireAsync(source: "unnamed", cancellationToken: ct);
        ConcurrencyLease lease = await acq; lease.Dispose(); await lease.DisposeAsync();
        ConcurrencyLimiter c = ConcurrencyLimiter.FromLimit(limit: 1, name: null, tracer: null, system: sys);
        c = ConcurrencyLimiter.FromLimit(limit: l1, name: null, tracer: null, system: sys);
        IActorRef g = c.Gatekeeper; ActivitySource t = c.Tracer; c.Dispose(); await c.DisposeAsync();
        Task<int> r = il.RunAsync<int>(operation: _ => Task.FromResult(1), source: "unnamed", cancellationToken: ct);
        IAsyncEnumerable<int> s = il.WrapStream<int>(stream: AsyncEnumerable.Empty<int>(), source: "unnamed");
        ValueTask<IAsyncDisposable> ctx = ConcurrencyContext.EnterAsync(limiter: null, source: "unnamed", cancellationToken: ct);
        object[] proto = [new GatekeeperProtocol.Acquire(Source: "s", RequestId: 1), new GatekeeperProtocol.Granted(RequestId: 1, LeaseId: 2),
            new GatekeeperProtocol.Queued(RequestId: 1, WaitingCount: 1), new GatekeeperProtocol.Rejected(RequestId: 1, Reason: "r"),
            new GatekeeperProtocol.Release(LeaseId: 1), new GatekeeperProtocol.CancelAcquire(RequestId: 1), new GatekeeperProtocol.Cancelled(RequestId: 1),
            new GatekeeperProtocol.GetStatus(), new GatekeeperProtocol.Status(Running: 0, Waiting: 0, MaxRunning: 1, MaxQueued: null, Name: null)];
        // §2
        QueueStatus st = QueueStatus.Idle; st = QueueStatus.Processing; st = QueueStatus.Stopping; st = QueueStatus.Stopped;
        var cfg = new QueueConfig { QueueCapacity = 100, CapacityRefreshTime = TimeSpan.FromSeconds(1), ConcurrencyLimit = null, WorkerBatch = null };
        InvalidOperationException qse = new QueueStateException();
        var m = new QueueMetrics(Enqueued: 0, Processed: 0, Errors: 0, BackpressureEvents: 0);
        var b = new BoundedQueue<int>(maxSize: 100, timeout: null, logger: log, system: sys);
        b = new BoundedQueue<int>(maxSize: 100, timeout: null, logger: log, system: sys, name: null, workerBatch: null);
        QueueStatus bs = b.Status; QueueMetrics bm = b.Metrics; int sz = b.Size; bool f = b.IsFull, e = b.IsEmpty; int w = b.WorkerCount; IActorRef br = b.Router;
        await b.StartAsync(cancellationToken: ct); Task<bool> p = b.PutAsync(item: 1, timeout: null, cancellationToken: ct); Task<int> gt = b.GetAsync(cancellationToken: ct);
        b.TaskDone(); Task j = b.JoinAsync(cancellationToken: ct);
        await b.StartWorkersAsync(worker: (Func<int, Task>)(_ => Task.CompletedTask), numWorkers: 1, errorHandler: null);
        await b.StartWorkersAsync(worker: (Func<int, CancellationToken, Task>)((_, _) => Task.CompletedTask), numWorkers: 1, errorHandler: null);
        await b.StopAsync(timeout: null); b.Dispose(); await b.DisposeAsync();
        var wq = new WorkQueue<int>(maxSize: 100, timeout: null, concurrencyLimit: null, logger: log, system: sys);
        wq = new WorkQueue<int>(config: cfg, logger: log, system: sys);
        wq = new WorkQueue<int>(maxSize: 1, timeout: null, limiter: il, logger: log, system: sys);
        QueueStatus ws = wq.Status; QueueMetrics wm = wq.Metrics; int wsz = wq.Size; bool wf = wq.IsFull, we = wq.IsEmpty; IActorRef wr = wq.Router;
        await wq.StartAsync(cancellationToken: ct); await wq.StopAsync(timeout: null); Task<bool> wp = wq.PutAsync(item: 1, cancellationToken: ct);
        await wq.ProcessAsync(worker: (Func<int, Task>)(_ => Task.CompletedTask), numWorkers: null, errorHandler: null);
        await wq.ProcessAsync(worker: (Func<int, CancellationToken, Task>)((_, _) => Task.CompletedTask), numWorkers: null, errorHandler: null);
        await wq.JoinAsync(cancellationToken: ct); await wq.BatchProcessAsync(items: [1], worker: _ => Task.CompletedTask, numWorkers: null, errorHandler: null);
        wq.Dispose(); await wq.DisposeAsync();
        // §3
        var lk = new AsyncLock(system: sys); bool il2 = lk.IsLocked; Task<bool> la = lk.AcquireAsync(cancellationToken: ct); lk.Release();
        ValueTask<IAsyncDisposable> lka = lk.LockAsync(cancellationToken: ct); lk.Dispose(); await lk.DisposeAsync();
        var sem = new AsyncSemaphore(initialValue: 1, system: sys); int v = sem.Value; Task sa = sem.AcquireAsync(cancellationToken: ct); sem.Release(); ValueTask<IAsyncDisposable> sl = sem.LockAsync(cancellationToken: ct);
        var cap = new AsyncCapacityLimiter(totalTokens: 1, system: sys); double tt = cap.TotalTokens; cap.TotalTokens = 2; int bt = cap.BorrowedTokens; double at = cap.AvailableTokens;
        Task ca = cap.AcquireAsync(cancellationToken: ct); cap.Release(); Task cb = cap.AcquireOnBehalfOfAsync(borrower: new object(), cancellationToken: ct); cap.ReleaseOnBehalfOf(borrower: new object());
        ValueTask<IAsyncDisposable> cl = cap.LockAsync(cancellationToken: ct);
        var ev = new AsyncEvent(system: sys); bool set = ev.IsSet; ev.Set(); Task ew = ev.WaitAsync(cancellationToken: ct);
        var cond = new AsyncCondition(@lock: null, system: sys); AsyncLock cl2 = cond.Lock; Task<bool> cq = cond.AcquireAsync(cancellationToken: ct); cond.Release();
        ValueTask<IAsyncDisposable> cla = cond.LockAsync(cancellationToken: ct); Task cw = cond.WaitAsync(cancellationToken: ct); Task cn = cond.NotifyAsync(n: 1); Task cna = cond.NotifyAllAsync();
        IDisposable[] disposables = [lk, sem, cap, ev, cond]; IAsyncDisposable[] asyncs = [lk, sem, cap, ev, cond, lease, b, wq, c];
    }
}
