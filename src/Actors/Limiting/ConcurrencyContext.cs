namespace ActorQueue.Actors;

/// <summary>
/// pydantic-ai's <c>get_concurrency_context</c>: a scope that holds a slot, or does nothing when there is no limiter,
/// so code can take an optional limiter without branching.
/// </summary>
public static class ConcurrencyContext
{
    /// <summary>Enters a slot of <paramref name="limiter"/>; with a <c>null</c> limiter, returns a scope that does nothing and touches no actor.</summary>
    /// <param name="limiter">The limiter, or <c>null</c> for no limit.</param>
    /// <param name="source">Who asks, for traces and rejection messages.</param>
    /// <param name="cancellationToken">Cancels the wait for a slot.</param>
    /// <returns>A scope whose disposal gives the slot back.</returns>
    /// <example><code>await using (await ConcurrencyContext.EnterAsync(limiter, "model:gpt")) { await CallModelAsync(); }</code></example>
    public static ValueTask<IAsyncDisposable> EnterAsync(IConcurrencyLimiter? limiter, string source = "unnamed",
                                                         CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (limiter is null)
        {
            return new ValueTask<IAsyncDisposable>(NoLimit.Instance);
        }

        var acquire = limiter.AcquireAsync(source, cancellationToken);
        return acquire.IsCompletedSuccessfully
            ? new ValueTask<IAsyncDisposable>(acquire.Result)
            : AwaitLease(acquire);

        static async ValueTask<IAsyncDisposable> AwaitLease(ValueTask<ConcurrencyLease> acquire) => await acquire.ConfigureAwait(false);
    }

    /// <summary>The scope used when there is no limiter.</summary>
    private sealed class NoLimit : IAsyncDisposable
    {
        public static readonly NoLimit Instance = new();

        public ValueTask DisposeAsync() => default;
    }
}
