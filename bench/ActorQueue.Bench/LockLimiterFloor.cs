using System.Threading.Tasks.Sources;

namespace ActorQueue.Bench;

/// <summary>
/// The floor of the shared-memory design for the contended limiter rows (subject <see cref="Name"/>): the cheapest
/// weighted FIFO limiter whose waiters complete as ActorQueue's do — a lock, a linked FIFO of waiters, each waiter its
/// own <see cref="IValueTaskSource{TResult}"/> awaited once (no task per wait), its continuation queued to the thread
/// pool, never run inline. Nothing else: no priorities, timeouts, cancellation, resize, telemetry, counts or
/// validation. What ActorQueue costs beyond it is its own; what it costs against RateLimiting (a lock and a
/// <c>TaskCompletionSource</c> per wait) is the price of that completion style on this machine.
/// </summary>
internal sealed class LockLimiterFloor(int permits)
{
    /// <summary>Subject name in a scenario's table.</summary>
    public const string Name = "lock-floor";

    private readonly Lock _lock = new();
    private int _free = permits;
    private Waiter? _head;
    private Waiter? _tail;

    /// <summary>A lease of <paramref name="count"/> permits, at once when free and nobody waits, else in FIFO order.</summary>
    public ValueTask<Lease> AcquireAsync(int count)
    {
        lock (_lock)
        {
            if (_head is null && _free >= count)
            {
                _free -= count;
                return new ValueTask<Lease>(new Lease(this, count));
            }

            var waiter = new Waiter(count);
            if (_tail is null)
            {
                _head = waiter;
            }
            else
            {
                _tail.Next = waiter;
            }

            _tail = waiter;
            return new ValueTask<Lease>(waiter, 0);
        }
    }

    private void Release(int count)
    {
        lock (_lock)
        {
            _free += count;
            while (_head is { } head && _free >= head.Count)
            {
                _free -= head.Count;
                _head = head.Next;
                if (_head is null)
                {
                    _tail = null;
                }

                head.Grant(new Lease(this, head.Count));
            }
        }
    }

    /// <summary>Permits held; given back once.</summary>
    public sealed class Lease(LockLimiterFloor limiter, int count) : IDisposable
    {
        private int _released;

        /// <inheritdoc />
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                limiter.Release(count);
            }
        }
    }

    /// <summary>One waiting caller: its own completion, awaited once.</summary>
    private sealed class Waiter(int count) : IValueTaskSource<Lease>
    {
        private static readonly Action<object?> Completed = static _ => { };

        private Action<object?>? _continuation;
        private object? _state;
        private Lease? _lease;

        public Waiter? Next { get; set; }

        public int Count { get; } = count;

        public void Grant(Lease lease)
        {
            _lease = lease;
            if (Interlocked.CompareExchange(ref _continuation, Completed, null) is { } continuation)
            {
                ThreadPool.UnsafeQueueUserWorkItem(continuation, _state, preferLocal: true);
            }
        }

        public Lease GetResult(short token) => _lease!;

        public ValueTaskSourceStatus GetStatus(short token) =>
            ReferenceEquals(Volatile.Read(ref _continuation), Completed) ? ValueTaskSourceStatus.Succeeded : ValueTaskSourceStatus.Pending;

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        {
            _state = state;
            if (Interlocked.CompareExchange(ref _continuation, continuation, null) is not null)
            {
                ThreadPool.UnsafeQueueUserWorkItem(continuation, state, preferLocal: true);
            }
        }
    }
}
