using ActorQueue.Actors;

namespace ActorQueue.Tests.Queues;

public class QueueConfigTests
{
    [Fact]
    public void Defaults_are_lionfuncs_defaults()
    {
        var config = new QueueConfig();
        Assert.Equal((100, TimeSpan.FromSeconds(1), (int?)null), (config.QueueCapacity, config.CapacityRefreshTime, config.ConcurrencyLimit));
        Assert.Null(config.WorkerBatch);
    }

    [Fact]
    public void Invalid_values_throw_naming_the_property_and_the_value()
    {
        var capacity = Assert.Throws<ArgumentOutOfRangeException>(() => new QueueConfig { QueueCapacity = 0 });
        var refresh = Assert.Throws<ArgumentOutOfRangeException>(() => new QueueConfig { CapacityRefreshTime = TimeSpan.Zero });
        var limit = Assert.Throws<ArgumentOutOfRangeException>(() => new QueueConfig { ConcurrencyLimit = 0 });
        var batch = Assert.Throws<ArgumentOutOfRangeException>(() => new QueueConfig { WorkerBatch = 0 });

        Assert.Equal(("QueueCapacity", "QueueCapacity must be >= 1, got 0"), (capacity.ParamName, capacity.Message.Split(" (")[0]));
        Assert.Equal("CapacityRefreshTime", refresh.ParamName);
        Assert.Contains("got 00:00:00", refresh.Message);
        Assert.Equal("ConcurrencyLimit", limit.ParamName);
        Assert.Contains("ConcurrencyLimit must be >= 1 when set, got 0", limit.Message);
        Assert.Equal("WorkerBatch", batch.ParamName);
        Assert.Contains("WorkerBatch must be >= 1 when set, got 0", batch.Message);
    }

    [Fact]
    public void With_expressions_are_validated_too()
    {
        var config = new QueueConfig { QueueCapacity = 5 };
        Assert.Throws<ArgumentOutOfRangeException>(() => config with { QueueCapacity = -1 });
        Assert.Equal(7, (config with { QueueCapacity = 7 }).QueueCapacity);
    }
}
