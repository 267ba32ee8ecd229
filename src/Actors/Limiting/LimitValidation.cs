using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// The one place every limit's values and arguments are checked (<see cref="ConcurrencyLimit"/>,
/// <see cref="ModelApiLimiterOptions"/>, the limiters and their adapters). Every error is an
/// <see cref="ArgumentOutOfRangeException"/> naming the parameter and carrying its value, with one message form:
/// "<c>{name} must be {bound}, got {value}</c>" (the concurrency limit's names are pydantic-ai's: <c>max_running</c>,
/// <c>max_queued</c>).
/// </summary>
internal static class LimitValidation
{
    public static int MaxRunning(int value, string parameterName) => AtLeastOne(value, parameterName, "max_running");

    public static int? MaxQueued(int? value, string parameterName) =>
        value is null or >= 0 ? value : throw OutOfRange(parameterName, value, ">= 0", "max_queued");

    /// <summary>A count that must be at least 1, named <paramref name="label"/> in the message (the parameter's name when <c>null</c>).</summary>
    public static long AtLeastOne(long value, string parameterName, string? label = null) =>
        value >= 1 ? value : throw OutOfRange(parameterName, value, ">= 1", label);

    /// <inheritdoc cref="AtLeastOne(long, string, string?)"/>
    public static int AtLeastOne(int value, string parameterName, string? label = null) =>
        value >= 1 ? value : throw OutOfRange(parameterName, value, ">= 1", label);

    /// <summary>A period (of a rate, of idleness): above zero and finite.</summary>
    public static TimeSpan Period(TimeSpan value, string parameterName) =>
        value > TimeSpan.Zero && value != Timeout.InfiniteTimeSpan && value != TimeSpan.MaxValue
            ? value
            : throw OutOfRange(parameterName, value, "> 0 and finite");

    /// <summary>A wait timeout: <c>null</c> and <see cref="Timeout.InfiniteTimeSpan"/> mean for ever (returned as <c>null</c>), zero means never wait.</summary>
    public static TimeSpan? WaitTimeout(TimeSpan? value, string parameterName) => value switch
    {
        null => null,
        { } infinite when infinite == Timeout.InfiniteTimeSpan => null,
        { } timeout when timeout >= TimeSpan.Zero => timeout,
        _ => throw OutOfRange(parameterName, value, ">= 0 or infinite", "wait timeout"),
    };

    /// <summary>A request's permits: at least 1 and at most <paramref name="maxRunning"/>, which it could never get otherwise.</summary>
    public static int Permits(int value, int maxRunning, string? limiterName, string parameterName)
    {
        AtLeastOne(value, parameterName, "permits");
        return value <= maxRunning ? value : throw ExceedsLimit(value, maxRunning, limiterName, parameterName);
    }

    /// <summary>The error for a request of more permits than there are.</summary>
    public static ArgumentOutOfRangeException ExceedsLimit(int permits, long maxRunning, string? target, string parameterName = "permits") =>
        new(parameterName, permits, $"permits ({permits}) exceed max_running ({maxRunning}) of {target ?? "the limiter"}: the request could never be granted");

    /// <summary>A call's token estimate: at least 1 and at most what a period holds, which it could never get otherwise.</summary>
    public static long EstimatedTokens(long value, long tokensPerPeriod, string? limiterName, string parameterName)
    {
        AtLeastOne(value, parameterName);
        return value <= tokensPerPeriod
            ? value
            : throw new ArgumentOutOfRangeException(parameterName, value,
                $"{parameterName} ({value}) exceeds tokens per period ({tokensPerPeriod}) of {limiterName ?? "the limiter"}: the call could never be granted");
    }

    /// <summary>What a call really used: 0 or more (0 for a call that failed before the model ran); the message says what was settled (<paramref name="settling"/>).</summary>
    public static long ActualTokens(long value, string parameterName, ModelApiLease settling) =>
        value >= 0
            ? value
            : throw new ArgumentOutOfRangeException(parameterName, value, $"{Message(parameterName, value, ">= 0")}; {settling.Named} is not settled");

    /// <summary>Why an actor's request is invalid, or <c>null</c>: the checks a facade makes by throwing.</summary>
    public static string? Invalid(GatekeeperProtocol.Acquire message, IActorRef requester)
    {
        if (IsAskTemporary(requester))
        {
            return $"Acquire {message.RequestId} was sent with Ask: the Ask's temporary actor would hold the lease and stop at its first reply, "
                   + "which releases it at once. Send Acquire with Tell from the actor that will hold the lease (async code: AcquireAsync)";
        }

        if (message.Permits < 1)
        {
            return Message("permits", message.Permits, ">= 1");
        }

        if (message.Tokens < 0)
        {
            return Message("tokens", message.Tokens, ">= 0");
        }

        return message.WaitTimeout is { } timeout && timeout < TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan
            ? Message("wait timeout", timeout, ">= 0 or infinite")
            : null;
    }

    /// <summary>
    /// Whether <paramref name="actor"/> is a temporary actor (<c>/temp/…</c>), as an <c>Ask</c> makes: it stops at the
    /// first reply, so it can hold no lease (the gatekeeper would release it at once). Reads the path's two links, no allocation.
    /// </summary>
    public static bool IsAskTemporary(IActorRef actor) =>
        actor.Path is ChildActorPath { Parent: ChildActorPath { Name: "temp", Parent: RootActorPath } };

    /// <summary>A full-queue mode: one of <see cref="QueueFullMode"/>'s values (a cast number is not).</summary>
    public static QueueFullMode WhenFull(QueueFullMode value, string parameterName) =>
        Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(parameterName, value, $"{parameterName} must be a QueueFullMode ({string.Join(" or ", Enum.GetNames<QueueFullMode>())}), got {(int)value}");

    /// <summary>The error every check throws: the parameter, its value, and the one message form.</summary>
    private static ArgumentOutOfRangeException OutOfRange(string parameterName, object? value, string bound, string? label = null) =>
        new(parameterName, value, Message(label ?? parameterName, value, bound));

    private static string Message(string name, object? value, string bound) => $"{name} must be {bound}, got {value}";
}
