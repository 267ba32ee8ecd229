using System.Diagnostics;
using ActorQueue.Coordination;

namespace ActorQueue.Actors;

/// <summary>
/// The span a limiter's caller gets while it really waits (the gatekeeper said it queued), named
/// <c>waiting for {name ?? source} concurrency</c>. A wait that ends in a timeout, an eviction, a rejection or a
/// cancellation sets the span's status to error and its <c>outcome</c> tag. A tracing listener is the application's
/// code, run on the caller's thread: one that throws costs the span, never the caller's lease or answer.
/// </summary>
internal sealed class WaitSpans(ActivitySource tracer, string? name)
{
    /// <summary>Whether anyone listens, so a request should carry a queued signal.</summary>
    public bool IsTraced => tracer.HasListeners();

    /// <summary>
    /// Opens a wait span around <paramref name="grant"/> once <paramref name="queued"/> says the request waits (a count ≥ 0).
    /// The caller awaits a <see cref="RelayedWait{TResult}"/>, not the tracing's task: it resumes as an untraced caller
    /// does, also in a captured context that refuses its continuation.
    /// </summary>
    public ValueTask<ConcurrencyLease> TraceWaitAsync(AcquireRequest request, Task<int> queued, ValueTask<ConcurrencyLease> grant,
                                                      int maxRunning, int? maxQueued, string? partitionKey) =>
        RelayedWait<ConcurrencyLease>.Relay(TraceAsync(request, queued, grant, maxRunning, maxQueued, partitionKey));

    private async ValueTask<ConcurrencyLease> TraceAsync(AcquireRequest request, Task<int> queued, ValueTask<ConcurrencyLease> grant,
                                                         int maxRunning, int? maxQueued, string? partitionKey)
    {
        var waitingCount = await queued.ConfigureAwait(false);
        var activity = waitingCount >= 0 ? StartSafely(request, waitingCount, maxRunning, maxQueued, partitionKey) : null;
        try
        {
            var lease = await grant.ConfigureAwait(false);
            activity?.SetTag("outcome", "granted");
            return lease;
        }
        catch (Exception error) when (activity is not null)
        {
            var outcome = error switch
            {
                OperationCanceledException => "cancelled",
                _ => GatekeeperReplies.KindOf(error) switch
                {
                    RejectionReason.TimedOut => "timed_out",
                    RejectionReason.Evicted => "evicted",
                    _ => "rejected",
                },
            };
            activity.SetTag("outcome", outcome);
            activity.SetStatus(ActivityStatusCode.Error, UserText.MessageOf(error)); // the application's exception may throw from Message
            throw;
        }
        finally
        {
            StopSafely(activity);
        }
    }

    /// <summary>
    /// <see cref="Start"/>, or no span when a listener's <c>ActivityStarted</c> (the application's code) throws: the
    /// request is on its way already, so its caller must still await its answer (before, the listener's exception
    /// reached the caller and the request, granted later to nobody, kept its permits for good).
    /// </summary>
    private Activity? StartSafely(AcquireRequest request, int waitingCount, int maxRunning, int? maxQueued, string? partitionKey)
    {
        try
        {
            return Start(request, waitingCount, maxRunning, maxQueued, partitionKey);
        }
        catch (Exception)
        {
            return null; // nowhere to report it but the tracing that failed
        }
    }

    /// <summary>Ends the span; a listener's <c>ActivityStopped</c> that throws loses the span, not the caller's lease or answer.</summary>
    private static void StopSafely(Activity? activity)
    {
        try
        {
            activity?.Dispose();
        }
        catch (Exception)
        {
            // As at the start: the tracing failed, the caller's answer stands.
        }
    }

    private Activity? Start(AcquireRequest request, int waitingCount, int maxRunning, int? maxQueued, string? partitionKey)
    {
        var activity = tracer.StartActivity($"waiting for {name ?? request.Source} concurrency", ActivityKind.Internal);
        if (activity is null)
        {
            return null;
        }

        activity.SetTag("source", request.Source);
        activity.SetTag("waiting_count", waitingCount);
        activity.SetTag("max_running", maxRunning);
        activity.SetTag("permits", request.Demand.Permits);
        activity.SetTag("priority", request.Priority);
        if (request.Timeout is { } timeout)
        {
            activity.SetTag("wait_timeout_ms", timeout.TotalMilliseconds);
        }

        if (partitionKey is not null)
        {
            // A span is one request's record, not a time series: an unbounded key costs nothing here, only its length.
            activity.SetTag("partition_key", partitionKey.Length <= 64 ? partitionKey : partitionKey[..64]);
        }

        if (name is not null)
        {
            activity.SetTag("limiter_name", name);
        }

        if (maxQueued is { } bound)
        {
            activity.SetTag("max_queued", bound);
        }

        return activity;
    }
}
