// Key Vault holding the LeadPier password and the LE API key; the app settings reference them, never carry them.
param name string
param location string
param tags object

@secure()
param leadpierPassword string

@secure()
param leApiKey string

@description('Names of the secrets: leadpierPassword, leApiKey.')
param secretNames object

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    //checkov:skip=CKV_AZURE_109:Without a virtual network, Key Vault references are resolved over the public endpoint; access needs an Entra ID token and an RBAC role.
    //checkov:skip=CKV_AZURE_189:Same reason: no virtual network in this template, access is by identity only.
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    // Azure RBAC, not access policies: the app's identity gets Key Vault Secrets User and nothing else.
    enableRbacAuthorization: true
    enableSoftDelete: true
    // The shortest window: the secrets are copies of credentials kept elsewhere, and a vault held in soft delete
    // keeps its name from being reused by the next `azd up` of the same environment for that long.
    softDeleteRetentionInDays: 7
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource leadpierPasswordSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: secretNames.leadpierPassword
  properties: {
    //checkov:skip=CKV_AZURE_41:The password belongs to the LeadPier account and changes when its owner changes it; an expiry date here would only break the reference.
    value: leadpierPassword
    contentType: 'text/plain'
  }
}

// Only when LE wants a key: without one, LE_API_KEY stays empty and the app sends no X-API-Key.
resource leApiKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(leApiKey)) {
  parent: vault
  name: secretNames.leApiKey
  properties: {
    //checkov:skip=CKV_AZURE_41:The key is issued by LE and rotated there; an expiry date here would only break the reference.
    //checkov:skip=CKV_AZURE_114:contentType is set below; checkov looks for it one level too high in a conditional resource (the infra tests check it on the parse).
    value: leApiKey
    contentType: 'text/plain'
  }
}

output name string = vault.name
// The vault's URI; the app settings name the secrets under it without a version, so a reference follows the latest
// version. (No output carries a secret's URI: the linter's outputs-should-not-contain-secrets flags such names.)
output uri string = vault.properties.vaultUri
