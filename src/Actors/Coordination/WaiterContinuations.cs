using System.Runtime.ExceptionServices;

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
    public static void Schedule(Action<object?> continuation, object? state, ExecutionContext? context, object? scheduling) =>
        ScheduleReportingTo(RethrowOnThreadPool, continuation, state, context, scheduling);

    /// <summary>As <see cref="Schedule"/>, a continuation that throws out of a context's inline <c>Post</c> handed to <paramref name="unhandled"/>.</summary>
    /// <remarks>
    /// A context may run the continuation inline, inside its <c>Post</c>; should the continuation then throw (an
    /// <c>async void</c> method's failure, which its builder posts to the same context; an awaiter's own action), the
    /// exception comes out of <c>Post</c>: the continuation's, not a refusal, and it ran. It goes to
    /// <paramref name="unhandled"/>, by default rethrown on the thread pool, unhandled: where a continuation the thread
    /// pool runs puts its exception, and where .NET's own await puts one that comes out of a context's <c>Post</c>.
    /// Before, it was taken for a refusal and swallowed, never reported (<c>LocalSuspectsReviewTests</c>).
    /// </remarks>
    internal static void ScheduleReportingTo(Action<ExceptionDispatchInfo> unhandled, Action<object?> continuation, object? state,
                                             ExecutionContext? context, object? scheduling)
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
        catch (Exception error) when (scheduled.ThrewOnThisThread)
        {
            unhandled(ExceptionDispatchInfo.Capture(error)); // run inline, and it threw: reported, never into whoever answered
            return;
        }
        catch (Exception)
        {
            // The captured context refused it (see remarks): the thread pool runs it.
        }

        ThreadPool.UnsafeQueueUserWorkItem(scheduled, preferLocal: true);
    }

    /// <summary>Rethrows <paramref name="error"/> on the thread pool, unhandled, with its own stack.</summary>
    private static void RethrowOnThreadPool(ExceptionDispatchInfo error) =>
        ThreadPool.UnsafeQueueUserWorkItem(static error => error.Throw(), error, preferLocal: false);

    /// <summary>
    /// A continuation to run in a captured execution context, or posted to a captured scheduling context; run once
    /// whoever runs it: a context that threw may have kept it for its loop, or run it before it threw, and the thread
    /// pool runs it too then (<see cref="Schedule"/>). It notes the thread it threw on, so that a throw out of a
    /// context's inline <c>Post</c> is known for the continuation's own.
    /// </summary>
    private sealed class ScheduledContinuation(Action<object?> continuation, object? state, ExecutionContext? context) : IThreadPoolWorkItem
    {
        public static readonly SendOrPostCallback Post = static scheduled => ((ScheduledContinuation)scheduled!).Execute();

        public static readonly Action<object?> Start = static scheduled => ((ScheduledContinuation)scheduled!).Execute();

        /// <summary>1 once someone began to run it.</summary>
        private int _started;

        /// <summary>The managed thread the continuation threw on; 0 while it has not thrown.</summary>
        private int _threwOn;

        /// <summary>Whether the continuation threw on this thread: run inline by a context, inside the <c>Post</c> called here.</summary>
        public bool ThrewOnThisThread => Volatile.Read(ref _threwOn) == Environment.CurrentManagedThreadId;

        public void Execute()
        {
            if (Interlocked.Exchange(ref _started, 1) != 0)
            {
                return; // run already, or being run: by the context that threw, or by the thread pool after it
            }

            try
            {
                if (context is null)
                {
                    continuation(state);
                    return;
                }

                ExecutionContext.Run(context, static scheduled => ((ScheduledContinuation)scheduled!).Invoke(), this);
            }
            catch (Exception) when (NoteThrow())
            {
                throw; // never reached: the filter only notes the thread, and the exception goes on as it was
            }
        }

        private void Invoke() => continuation(state);

        private bool NoteThrow()
        {
            Volatile.Write(ref _threwOn, Environment.CurrentManagedThreadId);
            return false;
        }
    }
}
