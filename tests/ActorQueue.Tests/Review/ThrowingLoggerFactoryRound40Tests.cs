using ActorQueue.Actors;
using ActorQueue.Runtime;
using Microsoft.Extensions.Logging;

namespace ActorQueue.Tests.Review;

/// <summary>
/// A logger factory attached to the system (<see cref="ActorQueueRuntime.UseLoggerFactory"/>) that throws as it makes a
/// logger — a disposed one does (helper 189's repro: a host disposed while the application's own system lived on) —
/// must not stop the library's work: a log line never fails the work around it.
/// </summary>
public sealed class ThrowingLoggerFactoryRound40Tests : ActorQueueTestKit
{
    /// <summary>
    /// Failed before: <c>StartAsync</c> never completed (the hang guard's <see cref="TimeoutException"/>): the router's
    /// "started" line threw the factory's <see cref="ObjectDisposedException"/> out of its turn.
    /// </summary>
    [Fact]
    public async Task A_queue_starts_and_processes_when_the_systems_logger_factory_throws_as_it_makes_a_logger()
    {
        var factory = new ThrowingFactory();
        ActorQueueRuntime.UseLoggerFactory(Sys, factory);
        try
        {
            await using var queue = new WorkQueue<int>(10, system: Sys, name: "disposed-factory");
            await Within(queue.StartAsync());
            var processed = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            await queue.ProcessAsync(item =>
            {
                processed.TrySetResult(item);
                return Task.CompletedTask;
            });
            await queue.PutAsync(7);

            Assert.Equal(7, await Within(processed.Task));
            await Within(queue.JoinAsync());
            Assert.True(factory.Asked > 0, "the queue asked the attached factory for its logger");
        }
        finally
        {
            ActorQueueRuntime.UseLoggerFactory(Sys, null);
        }
    }

    /// <summary>A factory disposed under the system: every logger it is asked for throws.</summary>
    private sealed class ThrowingFactory : ILoggerFactory
    {
        private int _asked;

        public int Asked => Volatile.Read(ref _asked);

        public ILogger CreateLogger(string categoryName)
        {
            Interlocked.Increment(ref _asked);
            throw new ObjectDisposedException(nameof(ThrowingFactory));
        }

        public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

        public void Dispose()
        {
        }
    }
}
