-- Argo CD health check for featurelineage.io FeatureStoreProject.
--
-- Reads the kstatus conditions the operator writes (Ready, Reconciling, Stalled), and
-- only once the operator has observed the current generation: until then the status
-- describes an older spec. Uses the base library only, as Argo CD runs custom checks
-- without Lua's string library.

local function waiting(generation)
  if generation == nil then
    return {status = "Progressing", message = "waiting for the operator to observe the resource"}
  end
  return {status = "Progressing", message = "waiting for the operator to observe generation " .. generation}
end

local function unreported(generation)
  if generation == nil then
    return {status = "Progressing", message = "waiting for the operator to report conditions"}
  end
  return {status = "Progressing", message = "waiting for the operator to report conditions for generation " .. generation}
end

local function text(condition)
  if condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  return condition.reason or ""
end

local generation = obj.metadata.generation
local status = obj.status
if status == nil or status.observedGeneration == nil then
  return waiting(generation)
end
if generation ~= nil and status.observedGeneration < generation then
  return waiting(generation)
end

-- Conditions computed for the current generation, by type.
local current = {}
for _, condition in ipairs(status.conditions or {}) do
  if condition.type ~= nil and (generation == nil or condition.observedGeneration == nil
      or condition.observedGeneration >= generation) then
    current[condition.type] = condition
  end
end

-- Waiting for someone to approve a change is progress, not a failure.
for _, condition in ipairs(status.conditions or {}) do
  if current[condition.type] == condition and condition.reason == "AwaitingApproval" then
    return {status = "Progressing", message = text(condition)}
  end
end

local stalled, reconciling, ready = current.Stalled, current.Reconciling, current.Ready
if stalled ~= nil and stalled.status == "True" then
  return {status = "Degraded", message = text(stalled)}
end
if reconciling ~= nil and reconciling.status == "True" then
  return {status = "Progressing", message = text(reconciling)}
end
if ready ~= nil and ready.status == "True" then
  return {status = "Healthy", message = text(ready)}
end
if ready ~= nil and text(ready) ~= "" then
  return {status = "Progressing", message = text(ready)}
end
return unreported(generation)
