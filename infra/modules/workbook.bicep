// A workbook over the sync's telemetry: runs by status, records sent and unmatched per day, the latest failed
// runs with their errors, upstream latency. Self-contained: main.bicep passes the Application Insights resource id.

@description('Resource id of the Application Insights component the app sends its telemetry to.')
param appInsightsId string

@description('Name shown in the portal.')
param displayName string = 'LeadPier sync'

param location string = resourceGroup().location
param tags object = {}

var runsByStatusQuery = '''
customMetrics
| where name == "leadpier_sync.runs"
| summarize runs = sum(valueSum) by status = tostring(customDimensions["sync.status"]), bin(timestamp, 1h)
| render timechart
'''

var recordsPerDayQuery = '''
customMetrics
| where name in ("leadpier_sync.sent_records", "leadpier_sync.unmatched_codes")
| summarize total = sum(valueSum) by metric = name, bin(timestamp, 1d)
| render columnchart
'''

// The run is a `dependencies` item under the host's invocation; its own error lines share its operation and run id.
var failedRunsQuery = '''
dependencies
| where name == "leadpier_sync.run" and tostring(customDimensions["sync.status"]) in ("failed", "warning")
| project timestamp, run_id = tostring(customDimensions["sync.run_id"]), status = tostring(customDimensions["sync.status"]), trigger = tostring(customDimensions["sync.trigger"]), report_dates = tostring(customDimensions["sync.report_dates"]), error = tostring(customDimensions["sync.error"]), operation_Id
| join kind=leftouter (traces | where severityLevel >= 3 | summarize problems = make_list(message, 10) by operation_Id, run_id = tostring(customDimensions["sync.run_id"])) on operation_Id, run_id
| project-away operation_Id, operation_Id1, run_id1
| order by timestamp desc
| take 20
'''

var upstreamLatencyQuery = '''
dependencies
| where name in ("leadpier_sync.login", "leadpier_sync.fetch_page", "leadpier_sync.le_put")
| summarize p50_ms = percentile(duration, 50), p95_ms = percentile(duration, 95) by name, bin(timestamp, 1h)
| render timechart
'''

var queries = [
  {
    title: 'Runs by status'
    query: runsByStatusQuery
    visualization: 'timechart'
  }
  {
    title: 'Records sent and unmatched codes per day'
    query: recordsPerDayQuery
    visualization: 'barchart'
  }
  {
    title: 'Latest failed runs and their errors'
    query: failedRunsQuery
    visualization: 'table'
  }
  {
    title: 'Upstream latency (LeadPier login and pages, LE PUT)'
    query: upstreamLatencyQuery
    visualization: 'timechart'
  }
]

// Each query reads the last 7 days; the portal's time picker of each chart can change it.
var content = {
  version: 'Notebook/1.0'
  items: [for item in queries: {
    type: 3
    name: item.title
    content: {
      version: 'KqlItem/1.0'
      title: item.title
      query: item.query
      size: 0
      queryType: 0
      resourceType: 'microsoft.insights/components'
      timeContext: {
        durationMs: 604800000
      }
      visualization: item.visualization
    }
  }]
  fallbackResourceIds: [
    appInsightsId
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, appInsightsId, 'leadpier-sync-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: appInsightsId
    serializedData: string(content)
  }
}

output workbookId string = workbook.id
