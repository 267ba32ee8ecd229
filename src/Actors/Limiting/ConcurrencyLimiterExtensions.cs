using System.Runtime.CompilerServices;

namespace ActorQueue.Actors;

/// <summary>Runs async work under a limiter: the slot is taken before the work starts and given back however it ends.</summary>
public static class ConcurrencyLimiterExtensions
{
    /// <summary>
    /// Runs <paramref name="operation"/> holding one slot of <paramref name="limiter"/>. The slot is released when the
    /// operation completes, throws (the exception propagates unchanged) or is cancelled.
    /// </summary>
    /// <typeparam name="TResult">What the operation returns.</typeparam>
    /// <param name="limiter">The limiter to take a slot from.</param>
    /// <param name="operation">The work; it receives <paramref name="cancellationToken"/>.</param>
    /// <param name="source">Who asks, for traces and rejection messages.</param>
    /// <param name="cancellationToken">Cancels the wait for a slot and is passed to the operation.</param>
    /// <returns>The operation's result.</returns>
    public static async Task<TResult> RunAsync<TResult>(this IConcurrencyLimiter limiter, Func<CancellationToken, Task<TResult>> operation,
                                                        string source = "unnamed", CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(limiter);
        ArgumentNullException.ThrowIfNull(operation);
        ArgumentNullException.ThrowIfNull(source);
        using var lease = await limiter.AcquireAsync(source, cancellationToken).ConfigureAwait(false);
        return await operation(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs <paramref name="operation"/> holding one slot of <paramref name="limiter"/>, as the generic overload.</summary>
    /// <param name="limiter">The limiter to take a slot from.</param>
    /// <param name="operation">The work; it receives <paramref name="cancellationToken"/>.</param>
    /// <param name="source">Who asks, for traces and rejection messages.</param>
    /// <param name="cancellationToken">Cancels the wait for a slot and is passed to the operation.</param>
    /// <returns>A task that completes when the operation has.</returns>
    public static async Task RunAsync(this IConcurrencyLimiter limiter, Func<CancellationToken, Task> operation,
                                      string source = "unnamed", CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(limiter);
        ArgumentNullException.ThrowIfNull(operation);
        ArgumentNullException.ThrowIfNull(source);
        using var lease = await limiter.AcquireAsync(source, cancellationToken).ConfigureAwait(false);
        await operation(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Wraps a stream so that one slot is taken before its first item and held until the enumeration ends, throws
    /// or is disposed early (pydantic-ai's <c>request_stream</c>).
    /// </summary>
    /// <typeparam name="T">The item type.</typeparam>
    /// <param name="limiter">The limiter to take a slot from.</param>
    /// <param name="stream">The stream to guard.</param>
    /// <param name="source">Who asks, for traces and rejection messages.</param>
    /// <returns>The guarded stream; the cancellation token given to its enumerator cancels the wait and the enumeration.</returns>
    public static IAsyncEnumerable<T> WrapStream<T>(this IConcurrencyLimiter limiter, IAsyncEnumerable<T> stream, string source = "unnamed")
    {
        ArgumentNullException.ThrowIfNull(limiter);
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(source);
        return Guarded(limiter, stream, source);

        static async IAsyncEnumerable<T> Guarded(IConcurrencyLimiter limiter, IAsyncEnumerable<T> stream, string source,
                                                 [EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            using var lease = await limiter.AcquireAsync(source, cancellationToken).ConfigureAwait(false);
            await foreach (var item in stream.WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                yield return item;
            }
        }
    }
}
