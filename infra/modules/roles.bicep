// The identity's roles: exactly what the Functions host and the app use, each on the one resource it is about.
// Nothing at resource-group or subscription scope.
param principalId string
param storageAccountName string
param keyVaultName string
param applicationInsightsName string

// Built-in role definition ids (the same in every tenant).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Blobs, on the storage account: the host's own containers (azure-webjobs-hosts for the timer's schedule status and
// the host lock, azure-webjobs-secrets for the function keys), the deployment package Flex Consumption reads, and the
// app's state container (session, stats, runs, logs, and the leased run lock, which needs Owner's lease rights).
// The host's identity-based storage connection asks for Owner rather than Contributor.
resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageBlobDataOwner)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
  }
}

// Queues, on the storage account: /trigger's output binding writes leadpier-sync-runs, the worker's trigger reads
// and deletes its messages and moves a message that failed every delivery to leadpier-sync-runs-poison (creating the
// queues when missing), and /health counts the poison queue.
resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageQueueDataContributor)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
  }
}

// Secrets, on the vault (which holds only this app's two secrets): the platform resolves the Key Vault references of
// LEADPIER_PASSWORD and LE_API_KEY with this identity (keyVaultReferenceIdentity). Read only.
resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
  }
}

// Telemetry, on the Application Insights component: local authentication is disabled there, so the host sends
// traces, requests and metrics with an Entra ID token of this identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING).
resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, principalId, monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
  }
}
