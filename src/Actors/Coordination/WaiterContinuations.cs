namespace ActorQueue.Coordination;

/// <summary>
/// How a facade waiter's awaiter resumes (<see cref="FacadeWaiter{TResult}"/>): asynchronously, never on the thread
/// that answered, in the contexts the awaiter captured — and on the thread pool when a captured context refuses it.
/// </summary>
internal static class WaiterContinuations
{
    /// <summary>Runs <paramref name="continuation"/> asynchronously: on the thread pool, or in the contexts its awaiter captured.</summary>
    /// <remarks>
    /// A captured context that refuses the continuation (a <see cref="SynchronizationContext.Post"/> that throws, say
    /// for a UI loop already shut down; a <see cref="TaskScheduler"/> whose <c>QueueTask</c> throws) has it run on the
    /// thread pool instead, in the captured execution context: the caller resumes with its answer (a granted caller
    /// gets its lease, so it gives it back), and nothing throws into whoever answered (a gate's grant or close loop,
    /// which would lose the waiters it had taken out). A context that kept or ran the continuation before it threw runs
    /// it no second time: whoever comes second finds it started. .NET's own awaits lose such a continuation (a task's
    /// continuation rethrows the refusal on the thread pool, an unhandled exception), which would leave the caller
    /// suspended for ever and a granted caller's permit held for good.
    /// </remarks>
    public static void Schedule(Action<object?> continuation, object? state, ExecutionContext? context, object? scheduling)
    {
        if (context is null && scheduling is null)
        {
            ThreadPool.UnsafeQueueUserWorkItem(continuation, state, preferLocal: true);
            return;
        }

        var scheduled = new ScheduledContinuation(continuation, state, context);
        try
        {
            switch (scheduling)
            {
                case SynchronizationContext synchronization:
                    synchronization.Post(ScheduledContinuation.Post, scheduled);
                    return;
                case TaskScheduler scheduler:
                    Task.Factory.StartNew(ScheduledContinuation.Start, scheduled, CancellationToken.None, TaskCreationOptions.DenyChildAttach, scheduler);
                    return;
            }
        }
        catch (Exception)
        {
            // The captured context refused it (see remarks): the thread pool runs it.
        }

        ThreadPool.UnsafeQueueUserWorkItem(scheduled, preferLocal: true);
    }

    /// <summary>
    /// A continuation to run in a captured execution context, or posted to a captured scheduling context; run once
    /// whoever runs it: a context that threw may have kept it for its loop, or run it inline (the continuation threw out
    /// of its <c>Post</c>), and the thread pool runs it too then (<see cref="Schedule"/>).
    /// </summary>
    private sealed class ScheduledContinuation(Action<object?> continuation, object? state, ExecutionContext? context) : IThreadPoolWorkItem
    {
        public static readonly SendOrPostCallback Post = static scheduled => ((ScheduledContinuation)scheduled!).Execute();

        public static readonly Action<object?> Start = static scheduled => ((ScheduledContinuation)scheduled!).Execute();

        /// <summary>1 once someone began to run it.</summary>
        private int _started;

        public void Execute()
        {
            if (Interlocked.Exchange(ref _started, 1) != 0)
            {
                return; // run already, or being run: by the context that threw, or by the thread pool after it
            }

            if (context is null)
            {
                continuation(state);
                return;
            }

            ExecutionContext.Run(context, static scheduled => ((ScheduledContinuation)scheduled!).Invoke(), this);
        }

        private void Invoke() => continuation(state);
    }
}
