// Alerts on the sync's run telemetry in Application Insights: a failed run, and no successful run for a while.
// Self-contained: main.bicep passes the Application Insights resource id and the address to notify.

@description('Resource id of the Application Insights component the app sends its telemetry to.')
param appInsightsId string

@description('E-mail address that receives the alerts.')
param alertEmail string

@description('Minutes without a successful run before the staleness alert fires (the timer runs every 10 minutes).')
@minValue(15)
@maxValue(2880)
param staleAfterMinutes int = 30

@description('Prefix of the alert and action group names.')
param namePrefix string = 'leadpier-sync'

param location string = resourceGroup().location
param tags object = {}

// The run span lands in `dependencies` under this name (a child of the host's invocation), with its outcome in
// customDimensions (docs/OPERATIONS.md).
//
// A failed run's row arrives after the run has ended (up to the 10-minute function timeout after its `timestamp`,
// the run's start) plus batching and ingestion delay. So the rule reads rows by when they were ingested: each
// evaluation takes the last whole 10-minute slot of ingestion_time() that ended at least 5 minutes ago, so
// consecutive evaluations read consecutive slots and every row is read once, however late. The window only bounds
// `timestamp`: the slot (10 min), the wait (5 min), the longest run (10 min) and 35 minutes of ingestion delay.
// Rows are grouped by run id: one failed run, one row.
var failedRunFrequency = 'PT10M'
var failedRunWindow = 'PT1H'
var failedRunQuery = '''
let slot_end = bin(now() - 5m, 10m);
dependencies
| where name == "leadpier_sync.run" and tostring(customDimensions["sync.status"]) == "failed"
| where ingestion_time() >= slot_end - 10m and ingestion_time() < slot_end
| summarize arg_max(timestamp, *) by run_id = tostring(customDimensions["sync.run_id"])
| project timestamp, run_id, trigger = tostring(customDimensions["sync.trigger"]), error = tostring(customDimensions["sync.error"]), operation_Id
'''

var successfulRunQuery = '''
dependencies
| where name == "leadpier_sync.run" and tostring(customDimensions["sync.status"]) == "success"
| summarize arg_max(timestamp, *) by run_id = tostring(customDimensions["sync.run_id"])
| project timestamp, run_id
'''

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: '${namePrefix}-alerts'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'lpsync'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

resource runFailed 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-run-failed'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'LeadPier sync: a run failed'
    description: 'A sync run ended with status failed (one row per run id); its error is in customDimensions["sync.error"] of the run.'
    severity: 1
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: failedRunFrequency
    windowSize: failedRunWindow
    criteria: {
      allOf: [
        {
          query: failedRunQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource noSuccess 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-no-successful-run'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'LeadPier sync: no successful run for ${staleAfterMinutes} minutes'
    description: 'No run ended with status success in the window: the sync is failing, stuck or not firing.'
    severity: 1
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT${staleAfterMinutes}M'
    criteria: {
      allOf: [
        {
          query: successfulRunQuery
          timeAggregation: 'Count'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

output actionGroupId string = actionGroup.id
output alertRuleIds array = [
  runFailed.id
  noSuccess.id
]
